// Walks quire's OpenID Connect login and logouts through a real OP (oidc-provider) the
// way a browser does: every redirect followed by hand, forms read from the HTML and
// submitted, one cookie jar keyed by host (as browsers scope cookies, ports ignored)
// with SameSite enforced. quire is addressed as http://localhost:<port> and the OP as
// http://127.0.0.1:<port>, so the two are different sites and the trip back from the
// OP is a cross-site navigation, as it is in production.
//
// Environment (set by run.sh): QUIRE (quire's origin), OP (the issuer), QUIRE_BIN,
// CLIENT_ID, DISPLAY_NAME, plus the ROCKET_* variables quire itself was started with
// (for `quire doctor`). Prints one line per check and ends with "N passed, N failed".
import http from 'node:http';
import { spawnSync } from 'node:child_process';

const QUIRE = process.env.QUIRE;
const OP = process.env.OP;
const CLIENT_ID = process.env.CLIENT_ID;
const DISPLAY_NAME = process.env.DISPLAY_NAME;
const QUIRE_BIN = process.env.QUIRE_BIN;
const REQUEST_TIMEOUT_MS = 15_000;
const MAX_HOPS = 15;

// ---------------------------------------------------------------- checks

let passed = 0;
let failed = 0;
class Abort extends Error {}

function check(ok, what, detail = '') {
  if (ok) {
    passed += 1;
    console.log(`ok      ${what}`);
  } else {
    failed += 1;
    console.log(`FAILED  ${what}${detail ? `\n        ${String(detail).replace(/\n/g, '\n        ')}` : ''}`);
  }
  return ok;
}

/** A check the rest of the scenario depends on: failing it ends the scenario. */
function gate(ok, what, detail) {
  if (!check(ok, what, detail)) throw new Abort(what);
}

async function scenario(name, body) {
  console.log(`\n# ${name}`);
  try {
    await body();
  } catch (e) {
    if (e instanceof Abort) {
      console.log(`        (scenario "${name}" stopped here)`);
    } else {
      check(false, `${name}: no unexpected error`, e?.stack ?? e);
    }
  }
}

const snippet = (s, n = 600) => (s.length > n ? `${s.slice(0, n)}...` : s);
const textOf = (html) => html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();

// ---------------------------------------------------------------- HTML

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", '#39': "'", '#x27': "'", '#34': '"' };
function unescapeHtml(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e) => {
    const k = e.toLowerCase();
    if (ENTITIES[k]) return ENTITIES[k];
    if (k.startsWith('#x')) return String.fromCodePoint(parseInt(k.slice(2), 16));
    if (k.startsWith('#')) return String.fromCodePoint(parseInt(k.slice(1), 10));
    return m;
  });
}

function attrs(tag) {
  const out = {};
  for (const m of tag.matchAll(/([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)) {
    out[m[1].toLowerCase()] = unescapeHtml(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

/** Every form: its attributes, its inputs, and the submit buttons tied to it. */
function forms(html) {
  const list = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const a = attrs(m[1]);
    const inputs = [];
    for (const i of m[2].matchAll(/<input\b([^>]*)>/gi)) inputs.push(attrs(i[1]));
    list.push({ action: a.action ?? '', method: (a.method ?? 'get').toLowerCase(), id: a.id, inputs });
  }
  // Buttons outside a form, attached with form="<id>" (the OP's logout page does this).
  for (const b of html.matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)) {
    const a = attrs(b[1]);
    const form = a.form && list.find((f) => f.id === a.form);
    if (form) (form.buttons ??= []).push({ ...a, label: textOf(b[2]) });
  }
  return list;
}

function csrfToken(html) {
  const form = forms(html).find((f) => f.inputs.some((i) => i.name === 'csrf_token'));
  return form?.inputs.find((i) => i.name === 'csrf_token').value;
}

// ---------------------------------------------------------------- the browser

const siteOf = (url) => `${url.protocol}//${url.hostname}`; // scheme + host: ports do not make sites

class Browser {
  constructor() {
    this.cookies = []; // { name, value, host, path, sameSite, expires }
  }

  cookieFor(host, name) {
    return this.cookies.find((c) => c.host === host && c.name === name);
  }

  store(url, setCookies) {
    for (const line of setCookies) {
      const [pair, ...parts] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const c = {
        name: pair.slice(0, eq).trim(),
        value: pair.slice(eq + 1).trim(),
        host: url.hostname,
        path: '/',
        sameSite: 'lax', // browsers' default when none is given
        expires: null,
      };
      let defaultPath = url.pathname.replace(/\/[^/]*$/, '') || '/';
      let pathSet = false;
      for (const p of parts) {
        const [k, ...v] = p.split('=');
        const key = k.trim().toLowerCase();
        const val = v.join('=').trim();
        if (key === 'path') { c.path = val || '/'; pathSet = true; }
        if (key === 'samesite') c.sameSite = val.toLowerCase();
        if (key === 'max-age') c.expires = Date.now() + Number(val) * 1000;
        if (key === 'expires' && c.expires === null) c.expires = Date.parse(val);
      }
      if (!pathSet) c.path = defaultPath;
      this.cookies = this.cookies.filter((o) => !(o.host === c.host && o.name === c.name && o.path === c.path));
      if (c.expires === null || c.expires > Date.now()) this.cookies.push(c);
    }
  }

  /** The Cookie header for a request; `crossSite` as the browser computes it for navigations. */
  header(url, { crossSite, method }) {
    const now = Date.now();
    this.cookies = this.cookies.filter((c) => c.expires === null || c.expires > now);
    return this.cookies
      .filter((c) => c.host === url.hostname)
      .filter((c) => url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .filter((c) => {
        if (!crossSite || c.sameSite === 'none') return true;
        if (c.sameSite === 'strict') return false;
        return method === 'GET'; // Lax: only top-level GET navigations across sites
      })
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  /** One request, no redirect following. */
  request(method, urlString, { form, crossSite = false } = {}) {
    const url = new URL(urlString);
    const body = form ? new URLSearchParams(form).toString() : undefined;
    const headers = {
      'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 quire-interop',
      accept: 'text/html,application/xhtml+xml',
    };
    const cookie = this.header(url, { crossSite, method });
    if (cookie) headers.cookie = cookie;
    if (body !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers['content-length'] = Buffer.byteLength(body);
    }
    return new Promise((resolve, reject) => {
      const req = http.request(url, {
        method,
        headers,
        // Browsers resolve "localhost" to loopback; pin it to 127.0.0.1, where quire listens.
        lookup: (host, opts, cb) => {
          if (host === 'localhost') {
            return opts?.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4);
          }
          return cb(new Error(`driver: unexpected host ${host}`));
        },
        timeout: REQUEST_TIMEOUT_MS,
      }, (res) => {
        const chunks = [];
        res.on('data', (d) => chunks.push(d));
        res.on('end', () => {
          this.store(url, res.headers['set-cookie'] ?? []);
          resolve({
            method,
            url: url.href,
            status: res.statusCode,
            headers: res.headers,
            location: res.headers.location ? new URL(res.headers.location, url).href : undefined,
            body: Buffer.concat(chunks).toString('utf8'),
          });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${url.href}: no answer within ${REQUEST_TIMEOUT_MS} ms`)));
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  /**
   * A top-level navigation from a page at `from` (or typed in the address bar), with its
   * redirects followed like a browser: 301/302/303 become GET. Returns every hop.
   */
  async navigate(method, url, { form, from } = {}) {
    const hops = [];
    let initiator = from ? siteOf(new URL(from)) : null;
    let crossSite = false;
    let current = { method, url, form };
    for (let i = 0; i < MAX_HOPS; i++) {
      const target = new URL(current.url);
      if (initiator && siteOf(target) !== initiator) crossSite = true; // sticky over the chain
      const res = await this.request(current.method, current.url, { form: current.form, crossSite });
      hops.push(res);
      if (![301, 302, 303, 307, 308].includes(res.status) || !res.location) return hops;
      if (!initiator) initiator = siteOf(target);
      current = [307, 308].includes(res.status)
        ? { method: current.method, url: res.location, form: current.form }
        : { method: 'GET', url: res.location };
    }
    throw new Error(`more than ${MAX_HOPS} redirects from ${url}`);
  }

  async get(url, from) {
    return (await this.navigate('GET', url, { from })).at(-1);
  }
}

const describeHops = (hops) => hops.map((h) => `${h.method} ${h.url} -> ${h.status}${h.location ? ` ${h.location}` : ''}`).join('\n');
const q = (path) => `${QUIRE}${path}`;

async function opBackchannelCalls() {
  const res = await new Browser().request('GET', `${OP}/_interop/backchannel`);
  return JSON.parse(res.body);
}

// ---------------------------------------------------------------- steps

/**
 * From quire's /login/oidc through the OP's login and consent pages back into quire.
 * Returns the hops of the final redirect chain (ending on quire).
 */
async function loginThroughOp(browser, login, { expectLoginPage = true } = {}) {
  const start = await browser.request('GET', q('/login/oidc'));
  gate(start.status === 303 && start.location?.startsWith(`${OP}/auth?`),
    'GET /login/oidc answers 303 to the OP\'s authorization endpoint',
    `${start.status} ${start.location ?? ''}\n${snippet(textOf(start.body))}`);
  const auth = new URL(start.location);
  const p = auth.searchParams;
  check(p.get('response_type') === 'code' && p.get('client_id') === CLIENT_ID
    && p.get('redirect_uri') === q('/oidc/callback'),
  'authorization request: response_type=code, client_id, redirect_uri', auth.search);
  check(p.get('code_challenge_method') === 'S256' && /^[A-Za-z0-9_-]{43}$/.test(p.get('code_challenge') ?? ''),
    'authorization request: PKCE S256 challenge', auth.search);
  check((p.get('state') ?? '').length >= 16 && (p.get('nonce') ?? '').length >= 16,
    'authorization request: state and nonce', auth.search);
  check((p.get('scope') ?? '').split(' ').includes('openid'), 'authorization request: scope includes openid', p.get('scope'));
  const pending = browser.cookies.find((c) => c.host === 'localhost' && c.name === 'quire_oidc');
  check(pending && pending.sameSite === 'lax', 'pre-login cookie quire_oidc is SameSite=Lax',
    JSON.stringify(pending));

  // The browser follows to the OP: a cross-site navigation started on quire.
  let hops = await browser.navigate('GET', start.location, { from: q('/login') });
  let page = hops.at(-1);
  if (expectLoginPage) {
    gate(page.status === 200 && page.url.startsWith(`${OP}/interaction/`),
      'the OP shows its interaction page', describeHops(hops));
    const loginForm = forms(page.body).find((f) => f.inputs.some((i) => i.name === 'login'));
    gate(loginForm && loginForm.inputs.some((i) => i.name === 'password'),
      'the OP\'s login page has a login + password form', snippet(page.body));
    const fields = Object.fromEntries(loginForm.inputs.filter((i) => i.name).map((i) => [i.name, i.value ?? '']));
    fields.login = login;
    fields.password = 'correct horse battery staple';
    hops = await browser.navigate('POST', new URL(loginForm.action, page.url).href, { form: fields, from: page.url });
    page = hops.at(-1);
    // Consent (first time this account authorizes the client).
    const consent = page.status === 200 && forms(page.body).find((f) => f.inputs.some((i) => i.name === 'prompt' && i.value === 'consent'));
    gate(consent, 'after login the OP asks for consent', describeHops(hops) + '\n' + snippet(textOf(page.body)));
    const consentFields = Object.fromEntries(consent.inputs.filter((i) => i.name).map((i) => [i.name, i.value ?? '']));
    hops = await browser.navigate('POST', new URL(consent.action, page.url).href, { form: consentFields, from: page.url });
  }
  const callback = hops.find((h) => h.url.startsWith(q('/oidc/callback')));
  gate(callback, 'the OP redirects the browser to quire\'s /oidc/callback', describeHops(hops));
  const cb = new URL(callback.url).searchParams;
  check(cb.get('state') === p.get('state'), 'the callback carries the state quire sent', callback.url);
  return { hops, callback };
}

function expectLoggedIn(hops, callback, name) {
  gate(callback.status === 303 && callback.location?.startsWith(QUIRE),
    'quire\'s callback accepts the login: 303 on-site',
    `${callback.status} ${callback.location ?? ''}\n${snippet(textOf(callback.body), 1200)}`);
  const last = hops.at(-1);
  gate(last.status === 200 && last.url === q('/dashboard'),
    'the login lands on /dashboard (200)', describeHops(hops));
  check(last.body.includes(`Welcome, ${name}`), `the page the login lands on greets "Welcome, ${name}"`,
    `${snippet(textOf(last.body))}\n${flashDiagnosis(hops)}`);
}

/** Why a flash message set on a redirect back from the OP may not have been shown. */
function flashDiagnosis(hops) {
  const set = hops.flatMap((h) => (h.headers['set-cookie'] ?? []).filter((c) => c.startsWith('_flash=')).map((c) => `${h.method} ${new URL(h.url).pathname}: Set-Cookie: ${c}`));
  if (!set.length) return 'no _flash cookie was set on the way';
  return `${set.join('\n')}\n(a SameSite=Strict cookie is not sent on a navigation that started on another site, here the OP)`;
}

async function logoutAtOpPage(browser, page, what) {
  const form = forms(page.body).find((f) => f.inputs.some((i) => i.name === 'xsrf'));
  gate(page.status === 200 && form, `${what}: the OP shows its logout confirmation form`,
    `${page.status} ${page.url}\n${snippet(textOf(page.body))}`);
  const yes = (form.buttons ?? []).find((b) => b.name === 'logout');
  check(yes && yes.value === 'yes', `${what}: the confirmation has a "sign me out" button`, JSON.stringify(form));
  const fields = Object.fromEntries(form.inputs.filter((i) => i.name).map((i) => [i.name, i.value ?? '']));
  fields.logout = yes?.value ?? 'yes';
  return browser.navigate('POST', new URL(form.action, page.url).href, { form: fields, from: page.url });
}

// ---------------------------------------------------------------- the test

const decodeJwt = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));

await scenario('quire doctor against the OP', async () => {
  const res = spawnSync(QUIRE_BIN, ['doctor'], { encoding: 'utf8', timeout: 30_000, env: process.env });
  const out = `${res.stdout ?? ''}${res.stderr ?? ''}`;
  check(res.status === 0, '`quire doctor` exits 0', `exit ${res.status} ${res.error ?? ''}\n${out}`);
  check(/client_secret_basic/.test(res.stdout ?? ''), '`quire doctor` prints client_secret_basic', out);
  check((res.stdout ?? '').includes(`${QUIRE}/oidc/backchannel-logout`), '`quire doctor` prints the back-channel logout URI', out);
});

const alice = new Browser();
let firstSid;

await scenario('login through the OP\'s own login and consent pages', async () => {
  const login = await alice.get(q('/login'));
  check(login.status === 200 && textOf(login.body).includes(`Log in with ${DISPLAY_NAME}`),
    `GET /login shows "Log in with ${DISPLAY_NAME}"`, `${login.status}\n${snippet(textOf(login.body))}`);
  const anon = await alice.request('GET', q('/dashboard'));
  check(anon.status === 303 && anon.location?.startsWith(q('/login')), 'anonymous GET /dashboard is 303 to /login', `${anon.status} ${anon.location}`);

  const { hops, callback } = await loginThroughOp(alice, 'alice');
  expectLoggedIn(hops, callback, 'Alice Interop');
  check(!alice.cookieFor('localhost', 'quire_oidc'), 'the pre-login cookie is spent after the callback',
    JSON.stringify(alice.cookies.filter((c) => c.host === 'localhost')));
  const account = await alice.get(q('/account'));
  check(account.status === 200 && textOf(account.body).includes('Logged in as Alice Interop (alice@example.org)'),
    'GET /account: name and email from the OP\'s claims', `${account.status}\n${snippet(textOf(account.body))}`);
});

await scenario('write a post while logged in through the OP', async () => {
  const dash = await alice.get(q('/dashboard'));
  const token = csrfToken(dash.body);
  gate(dash.status === 200 && token, 'the dashboard has a csrf_token', `${dash.status}`);
  const title = `Interop post ${Date.now()}`;
  const hops = await alice.navigate('POST', q('/posts'), {
    form: { csrf_token: token, title, body: 'Written after logging in through **oidc-provider**.', publish: 'true' },
    from: q('/dashboard'),
  });
  check(hops[0].status === 303 && hops[0].location?.startsWith(q('/posts/')), 'POST /posts answers 303 to the new post', describeHops(hops));
  check(hops.at(-1).status === 200 && hops.at(-1).body.includes(title), 'the new post\'s page shows it', describeHops(hops));
  const home = await alice.get(q('/'));
  check(home.status === 200 && home.body.includes(title), 'the home page lists the new post', snippet(textOf(home.body)));
});

await scenario('RP-initiated logout (quire -> OP end_session -> back to quire) with back-channel call', async () => {
  const before = (await opBackchannelCalls()).length;
  const home = await alice.get(q('/'));
  const token = csrfToken(home.body);
  gate(token, 'the home page carries the logout form\'s csrf_token', snippet(home.body));
  const out = await alice.request('POST', q('/logout'), { form: { csrf_token: token } });
  gate(out.status === 303 && out.location?.startsWith(`${OP}/session/end?`),
    'POST /logout answers 303 to the OP\'s end_session endpoint', `${out.status} ${out.location ?? ''}`);
  const p = new URL(out.location).searchParams;
  const hint = p.get('id_token_hint') ?? '';
  let claims = {};
  try { claims = decodeJwt(hint); } catch { /* checked below */ }
  firstSid = claims.sid;
  check(claims.sub === 'alice' && claims.aud === CLIENT_ID && claims.iss === OP,
    'end_session: id_token_hint is the ID token quire received', JSON.stringify(claims));
  check(p.get('client_id') === CLIENT_ID, 'end_session: client_id', out.location);
  check(p.get('post_logout_redirect_uri') === q('/'), 'end_session: post_logout_redirect_uri is quire\'s home', out.location);
  check((p.get('state') ?? '').length >= 16, 'end_session: state', out.location);
  const gone = await alice.request('GET', q('/dashboard'));
  check(gone.status === 303, 'quire\'s own session already ended before the OP is visited', `${gone.status}`);

  const toOp = await alice.navigate('GET', out.location, { from: q('/') });
  const hops = await logoutAtOpPage(alice, toOp.at(-1), 'RP-initiated logout');
  const back = hops[0];
  gate(back.status === 303 && back.location?.startsWith(q('/')),
    'the OP sends the browser back to post_logout_redirect_uri', describeHops(hops));
  check(new URL(back.location).searchParams.get('state') === p.get('state'), 'the OP returns the state quire sent', back.location);
  const landing = hops.at(-1);
  check(landing.status === 200 && new URL(landing.url).pathname === '/', 'the browser ends on quire\'s home (200), not bounced into a login', describeHops(hops));
  check(!/action="\/logout"/.test(landing.body), 'quire\'s home shows the visitor logged out (no logout form)', snippet(textOf(landing.body)));
  check(textOf(landing.body).includes('You are logged out.'), 'quire\'s home says "You are logged out."',
    `${snippet(textOf(landing.body))}\n${flashDiagnosis([out, ...hops])}`);

  const calls = (await opBackchannelCalls()).slice(before);
  check(calls.length === 1 && calls[0].ok && calls[0].accountId === 'alice',
    'the OP made a back-channel logout call and quire answered 200', JSON.stringify(calls));
  const dash = await alice.request('GET', q('/dashboard'));
  check(dash.status === 303 && dash.location?.startsWith(q('/login')), 'GET /dashboard after logout: 303 to /login', `${dash.status} ${dash.location}`);
});

await scenario('second login, then logout at the OP alone: back-channel ends the quire session', async () => {
  // The OP session ended above, so the OP asks for the login again.
  const { hops, callback } = await loginThroughOp(alice, 'alice');
  expectLoggedIn(hops, callback, 'Alice Interop');
  const dash = await alice.request('GET', q('/dashboard'));
  gate(dash.status === 200, 'logged in again: GET /dashboard is 200', `${dash.status} ${dash.location ?? ''}`);

  const before = (await opBackchannelCalls()).length;
  // The person logs out at the OP itself (another tab, the IdP's dashboard): no hint.
  const endPage = await alice.navigate('GET', `${OP}/session/end`);
  const out = await logoutAtOpPage(alice, endPage.at(-1), 'logout at the OP');
  const done = out.at(-1);
  check(done.status === 200 && /Sign-out Success/i.test(done.body), 'the OP confirms the sign-out', describeHops(out));
  const calls = (await opBackchannelCalls()).slice(before);
  check(calls.length === 1 && calls[0].ok && calls[0].accountId === 'alice' && calls[0].sid && calls[0].sid !== firstSid,
    'the OP made a back-channel logout call (new sid) and quire answered 200', JSON.stringify(calls));
  const after = await alice.request('GET', q('/dashboard'));
  check(after.status === 303 && after.location?.startsWith(q('/login')),
    'the same browser, untouched by quire, is logged out: GET /dashboard is 303 to /login', `${after.status} ${after.location ?? ''}`);
  check(alice.cookieFor('localhost', 'quire_session'), '(the quire session cookie is still in the browser: only the back-channel ended it)',
    JSON.stringify(alice.cookies.filter((c) => c.host === 'localhost').map((c) => c.name)));
});

await scenario('a person outside auth.oidc.allowed_groups (groups from the OP) is refused', async () => {
  const bob = new Browser();
  const { callback } = await loginThroughOp(bob, 'bob');
  check(callback.status === 403 && /not in a group that is allowed/i.test(textOf(callback.body)),
    'quire refuses bob with a page saying why (403)', `${callback.status} ${callback.location ?? ''}\n${snippet(textOf(callback.body))}`);
  const dash = await bob.request('GET', q('/dashboard'));
  check(dash.status === 303, 'bob has no quire session', `${dash.status}`);
});

console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
