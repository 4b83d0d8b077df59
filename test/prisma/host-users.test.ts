/**
 * docs/prisma.md's mapping onto a Prisma-managed `User` table (PostgreSQL, the table as
 * `prisma migrate` creates it for the model in the guide: quoted camelCase columns, a
 * `TIMESTAMP(3)` createdAt, `<Model>_<field>_key` unique indexes), through `ssoflow/prisma`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrateSsoflow } from '../../src/kysely/index.js'
import { StorageConflictError } from '../../src/ports/storage.js'
import { createPrismaStorage, type PrismaStorageOptions } from '../../src/prisma/index.js'
import { fixedClock, makeUser } from '../../src/testing/index.js'
import { reportSkip } from '../helpers/databases.js'
import { PRISMA_DATABASES, type PrismaTestDatabase } from './databases.js'

const target = PRISMA_DATABASES.find((t) => t.name === 'postgres')
if (!target?.enabled) reportSkip('prisma host users (postgres)', 'DATABASE_URL')

describe.skipIf(!target?.enabled)('ssoflow/prisma on a Prisma-managed User table (PostgreSQL)', () => {
  let database: PrismaTestDatabase | undefined
  beforeAll(async () => {
    database = await target?.open()
  })
  afterAll(async () => {
    await database?.close()
  })

  it('creates and reads users in the host table; its email index is user.email, its username index user.username', async () => {
    if (!database) throw new Error('database not open')
    await database.client.$executeRawUnsafe(`create table "User" (
      "id" text not null, "username" text not null, "email" text not null, "name" text not null,
      "active" boolean not null default true, "suspended" boolean not null default false,
      "hasPassword" boolean not null default false, "mfa" boolean not null default false,
      "createdAt" timestamp(3) not null default current_timestamp, constraint "User_pkey" primary key ("id"))`)
    await database.client.$executeRawUnsafe(`create unique index "User_username_key" on "User"("username")`)
    await database.client.$executeRawUnsafe(`create unique index "User_email_key" on "User"("email")`)
    const clock = fixedClock('2026-03-01T12:00:00.000Z')
    const options: PrismaStorageOptions = {
      dialect: 'postgres',
      clock,
      tables: {
        users: {
          table: 'User',
          columns: {
            id: 'id',
            username: 'username',
            email: 'email',
            name: 'name',
            isActive: 'active',
            isSuspended: 'suspended',
            hasUsablePassword: 'hasPassword',
            has2fa: 'mfa',
            createdAt: 'createdAt',
          },
          dates: 'native',
          uniqueIndexes: { username: 'User_username_key', email: 'User_email_key' },
        },
      },
    }
    const storage = createPrismaStorage(database.client, options)
    await migrateSsoflow(storage.kysely, options)
    const email = (userId: string, address: string) => ({
      userId,
      email: address,
      emailNormalized: address,
      isVerified: true,
      isPrimary: true,
    })
    const alice = makeUser({ id: 'u1', username: 'alice', email: 'alice@example.com', createdAt: new Date('2026-01-02T03:04:05.678Z') })
    await storage.transaction((tx) => tx.createUser(alice, email('u1', 'alice@example.com')))
    expect(await storage.getUser('u1')).toEqual(alice)
    expect(await storage.findUsersByEmail('alice@example.com')).toMatchObject([{ user: { id: 'u1' } }])

    const clash = (user: ReturnType<typeof makeUser>) =>
      storage
        .transaction((tx) => tx.createUser(user, email(user.id, user.email)))
        .then(
          () => null,
          (error: unknown) => (error instanceof StorageConflictError ? error.constraint : error),
        )
    expect(await clash(makeUser({ id: 'u2', username: 'alice2', email: 'alice@example.com' }))).toBe('user.email')
    expect(await clash(makeUser({ id: 'u3', username: 'alice', email: 'other@example.com' }))).toBe('user.username')
    const rows = await database.client.$queryRawUnsafe<{ id: string }[]>(`select "id" from "User" order by "id"`)
    expect(rows).toEqual([{ id: 'u1' }])
  })
})
