/**
 * Hardened XML for SAML: one parser (`@xmldom/xmldom`, the one node-saml and xml-crypto verify
 * signatures with, so what is checked and what is read come from the same parser), strict error
 * handling, and refusals before any DOM is built: no DTD, no entity declaration (so no entity
 * expansion and no external fetch), bounded size, nesting depth and element count; no comment or
 * processing instruction in the document (the classic NameID-comment truncation).
 *
 * @module
 */
import { DOMParser } from '@xmldom/xmldom'

/** SAML and XML-security namespaces. */
export const NS = {
  protocol: 'urn:oasis:names:tc:SAML:2.0:protocol',
  assertion: 'urn:oasis:names:tc:SAML:2.0:assertion',
  metadata: 'urn:oasis:names:tc:SAML:2.0:metadata',
  dsig: 'http://www.w3.org/2000/09/xmldsig#',
  xenc: 'http://www.w3.org/2001/04/xmlenc#',
} as const

/** Limits of one parsed document. */
export interface XmlLimits {
  /** Longest document, in UTF-16 code units of the decoded text. */
  readonly maxLength: number
  /** Deepest element nesting. */
  readonly maxDepth: number
  /** Most elements. */
  readonly maxElements: number
}

/** Why a document was refused. */
export type XmlRefusal = 'too-large' | 'doctype' | 'too-deep' | 'too-many-elements' | 'malformed' | 'comment' | 'processing-instruction'

export type XmlParse =
  | { readonly ok: true; readonly doc: Document }
  | { readonly ok: false; readonly reason: XmlRefusal; readonly cause?: unknown }

const ELEMENT = 1
const PROCESSING_INSTRUCTION = 7
const COMMENT = 8
const DOCUMENT_TYPE = 10
const ENTITY_REFERENCE = 5

/**
 * Linear pre-scan of the raw text: markup declarations (`<!DOCTYPE`, `<!ENTITY`...) and nesting
 * depth, before the parser builds anything. Element nesting is counted from start and end tags;
 * quoted attribute values are skipped.
 */
function prescan(text: string, maxDepth: number): XmlRefusal | null {
  let depth = 0
  let i = text.indexOf('<')
  while (i >= 0 && i < text.length) {
    const next = text.charCodeAt(i + 1)
    if (next === 0x21 /* ! */) {
      if (text.startsWith('<!--', i)) {
        const end = text.indexOf('-->', i + 4)
        if (end < 0) return 'malformed'
        i = text.indexOf('<', end + 3)
        continue
      }
      if (text.startsWith('<![CDATA[', i)) {
        const end = text.indexOf(']]>', i + 9)
        if (end < 0) return 'malformed'
        i = text.indexOf('<', end + 3)
        continue
      }
      return 'doctype'
    }
    if (next === 0x3f /* ? */) {
      const end = text.indexOf('?>', i + 2)
      if (end < 0) return 'malformed'
      i = text.indexOf('<', end + 2)
      continue
    }
    if (next === 0x2f /* / */) {
      depth -= 1
      const end = text.indexOf('>', i + 2)
      if (end < 0) return 'malformed'
      i = text.indexOf('<', end + 1)
      continue
    }
    // A start tag: find its end outside quoted attribute values.
    let j = i + 1
    let quote = 0
    for (; j < text.length; j++) {
      const c = text.charCodeAt(j)
      if (quote !== 0) {
        if (c === quote) quote = 0
      } else if (c === 0x22 || c === 0x27) quote = c
      else if (c === 0x3e /* > */) break
    }
    if (j >= text.length) return 'malformed'
    if (text.charCodeAt(j - 1) !== 0x2f /* / */) {
      depth += 1
      if (depth > maxDepth) return 'too-deep'
    }
    i = text.indexOf('<', j + 1)
  }
  return null
}

/**
 * Parses `text` as XML under `limits`. Any parser error or warning is fatal. Then walks the DOM
 * (iteratively) to enforce the exact depth and element limits and to refuse comments, processing
 * instructions, document types and entity references anywhere.
 */
export function parseXml(text: string, limits: XmlLimits): XmlParse {
  if (text.length > limits.maxLength) return { ok: false, reason: 'too-large' }
  const early = prescan(text, limits.maxDepth)
  if (early) return { ok: false, reason: early }
  let doc: Document
  try {
    const fail = (message: string) => {
      throw new Error(message)
    }
    doc = new DOMParser({ locator: {}, errorHandler: { warning: fail, error: fail, fatalError: fail } }).parseFromString(
      text,
      'text/xml',
    ) as unknown as Document
  } catch (cause) {
    return { ok: false, reason: 'malformed', cause }
  }
  if (!doc?.documentElement) return { ok: false, reason: 'malformed' }
  let elements = 0
  const stack: { node: Node; depth: number }[] = []
  for (let child = doc.firstChild; child; child = child.nextSibling) stack.push({ node: child, depth: 1 })
  while (stack.length > 0) {
    const { node, depth } = stack.pop() as { node: Node; depth: number }
    switch (node.nodeType) {
      case COMMENT:
        return { ok: false, reason: 'comment' }
      case PROCESSING_INSTRUCTION:
        // xmldom keeps the XML declaration as a processing instruction `xml` of the document.
        if (node.parentNode === doc && (node as ProcessingInstruction).target === 'xml' && node === doc.firstChild) break
        return { ok: false, reason: 'processing-instruction' }
      case DOCUMENT_TYPE:
      case ENTITY_REFERENCE:
        return { ok: false, reason: 'doctype' }
      case ELEMENT:
        elements += 1
        if (elements > limits.maxElements) return { ok: false, reason: 'too-many-elements' }
        if (depth > limits.maxDepth) return { ok: false, reason: 'too-deep' }
        for (let child = node.firstChild; child; child = child.nextSibling) stack.push({ node: child, depth: depth + 1 })
        break
      default:
        break
    }
  }
  return { ok: true, doc }
}

/** Child elements of `parent` with this namespace and local name, in document order. */
export function children(parent: Node, ns: string, localName: string): Element[] {
  const out: Element[] = []
  for (let child = parent.firstChild; child; child = child.nextSibling) {
    if (child.nodeType === ELEMENT && (child as Element).namespaceURI === ns && (child as Element).localName === localName) {
      out.push(child as Element)
    }
  }
  return out
}

/** The only child element with this name, or null when there is none or more than one. */
export function onlyChild(parent: Node, ns: string, localName: string): Element | null {
  const found = children(parent, ns, localName)
  return found.length === 1 ? (found[0] as Element) : null
}

/** Every element below `root` (not `root` itself) whose local name is `localName`, in any namespace. */
export function descendantsNamed(root: Node, localName: string): Element[] {
  const out: Element[] = []
  const stack: Node[] = []
  for (let child = root.lastChild; child; child = child.previousSibling) stack.push(child)
  while (stack.length > 0) {
    const node = stack.pop() as Node
    if (node.nodeType !== ELEMENT) continue
    if ((node as Element).localName === localName) out.push(node as Element)
    for (let child = node.lastChild; child; child = child.previousSibling) stack.push(child)
  }
  return out
}

/** Every element below `root` with this namespace and local name. */
export function descendants(root: Node, ns: string, localName: string): Element[] {
  return descendantsNamed(root, localName).filter((e) => e.namespaceURI === ns)
}

/** The whole text of an element (every text and CDATA descendant, in order), trimmed. */
export function textOf(element: Element): string {
  return (element.textContent ?? '').trim()
}

/** An attribute's value, or null when absent. */
export function attr(element: Element, name: string): string | null {
  return element.hasAttribute(name) ? element.getAttribute(name) : null
}
