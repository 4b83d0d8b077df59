/**
 * The demo host's own pages (home, org login, settings). Plain HTML with every value escaped and
 * no inline script or style, under the same strict CSP as ssoflow's pages.
 */
import { escapeHtml as e } from '../../src/http/index.js'

export interface Person {
  readonly name: string
  readonly email: string
}

export function layout(title: string, who: Person | null, body: string, flash: string | null = null): string {
  const account = who
    ? `<form method="post" action="/logout" class="who"><span>Signed in as <strong>${e(who.name)}</strong> (${e(who.email)})</span> <button type="submit">Sign out</button></form>`
    : `<span class="who">Not signed in · <a href="/orgs/acme/login">Sign in</a></span>`
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)} · ssoflow demo</title>
<link rel="stylesheet" href="/demo.css">
</head>
<body>
<header><a class="logo" href="/">Acme App <span>· ssoflow demo</span></a>${account}</header>
<main>
${flash ? `<p class="flash" role="status">${e(flash)}</p>` : ''}
${body}
</main>
</body>
</html>
`
}

export const DEMO_CSS = `:root{--fg:#1d2330;--muted:#5b6475;--bg:#f5f6f8;--card:#fff;--line:#d9dde5;--accent:#3b4fd8}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{display:flex;justify-content:space-between;align-items:center;gap:1rem;flex-wrap:wrap;padding:.8rem 1.5rem;background:#1d2330;color:#fff}
header a{color:#fff}.logo{font-weight:700;text-decoration:none}.logo span{font-weight:400;opacity:.7}
.who{display:flex;gap:.5rem;align-items:center}.who button{font:inherit;font-size:.85rem;padding:.2rem .6rem;border-radius:6px;border:1px solid #fff;background:transparent;color:#fff;cursor:pointer}
main{max-width:70rem;margin:1.5rem auto;padding:0 1.5rem}
h1{font-size:1.6rem;margin:.5rem 0 1rem}h2{font-size:1.15rem;margin:0 0 .75rem}
section{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:1.25rem 1.5rem;margin:0 0 1.25rem}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(30rem,1fr));gap:1.25rem}.grid section{margin:0}
ol.try>li{margin:0 0 .8rem}.muted,.hint{color:var(--muted)}
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600}code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85em;word-break:break-all}
.button,button.primary{display:inline-block;font:inherit;padding:.5rem 1rem;border-radius:8px;border:1px solid var(--accent);background:var(--accent);color:#fff;text-decoration:none;cursor:pointer}
.flash{background:#e7f6ec;border:1px solid #a9dcb9;border-radius:8px;padding:.6rem 1rem}
.error{background:#fef3f2;border:1px solid #f5c2bd;border-radius:8px;padding:.6rem 1rem;color:#b42318}
label{display:block;font-weight:600;margin:.6rem 0 .25rem}input{font:inherit;padding:.45rem .6rem;border:1px solid var(--line);border-radius:8px;width:100%;max-width:22rem}
.trace{margin:.2rem 0 0;padding-left:1.1rem;font-size:.85rem}.trace li{margin:0}.kind{font-weight:600}.code{color:#b42318;font-weight:600}
.pill{display:inline-block;padding:0 .5rem;border-radius:999px;background:#eef0fb;color:#3b4fd8;font-size:.8rem}
.copy{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:.5rem 0 1rem}
`
