// The caniemail data (through doiuse-email) on emails read as JSON from standard input:
//   {"clients": ["gmail.desktop-webmail", ...], "emails": {"name": "<!DOCTYPE html>..."}}
// writes, for each email, every feature a client does not support, with where it is used:
//   {"name": [{"feature": "overflow", "client": "yahoo.android", "where": "<div class=\"preheader\">"}]}
// One node process checks every email (tests/test_email_clients.py runs it once).
import { DoIUseEmail } from 'doiuse-email';

const UNSUPPORTED = /^`(.+)` is not supported by `(.+)`$/;

// doiuse-email reports a feature and a client, not where: this says which rule or element.
class Located extends DoIUseEmail {
  constructor(options) {
    super(options);
    this.where = '';
    this.found = [];
  }

  checkStylesheet(stylesheet) {
    for (const rule of stylesheet.stylesheet?.rules ?? []) {
      this.where = rule.type === 'rule' ? `<style> ${rule.selectors.join(',')}` : `<style> @${rule.type} ${rule.media ?? ''}`.trim();
      super.checkStylesheet({ stylesheet: { rules: [rule] } });
    }
  }

  checkHtmlNode(node) {
    const named = (node.attributes ?? []).filter((a) => ['class', 'name', 'id'].includes(a.name));
    this.where = `<${node.tagName}${named.map((a) => ` ${a.name}="${a.value}"`).join('')}>`;
    super.checkHtmlNode(node);
  }

  error(message) {
    super.error(message);
    const [, feature, client] = UNSUPPORTED.exec(message) ?? [null, message, ''];
    this.found.push({ feature, client, where: this.where });
  }
}

let input = '';
for await (const chunk of process.stdin) input += chunk;
const { clients, emails } = JSON.parse(input);
const report = {};
for (const [name, html] of Object.entries(emails)) {
  const check = new Located({ emailClients: clients });
  check.check(html);
  const seen = new Set();
  report[name] = check.found.filter((f) => {
    const key = JSON.stringify(f);
    return seen.has(key) ? false : seen.add(key);
  });
}
process.stdout.write(JSON.stringify(report));
