// quire end to end in a real browser: Debian's Chromium, headless, driven by
// playwright-core. Started by run.sh with QUIRE_BIN (the quire binary), HARNESS_TIMEOUT
// (seconds, start-up included), CHROMIUM (the browser, /usr/bin/chromium) and
// E2E_SCREENSHOTS (the screenshots' folder, default target/e2e-screenshots). It starts,
// on free loopback ports:
//   - a quire with local accounts (signup open), addressed as 127.0.0.1,
//   - node oidc-provider (tests/interop/op.mjs) on 127.0.0.1, and a second quire with
//     providers ["oidc"] pointed at it, addressed as localhost, so the trip to the OP
//     and back is cross-site, as in production,
// then the browser, and stops everything at the end.
//
// Every quire page the browser lands on is checked: status, no console error, no
// Content-Security-Policy violation, no request off loopback, lang, title, a label for
// every form field, a visible keyboard focus on everything Tab reaches. Prints one line
// per check and ends with "N passed, N failed".
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import {
  INTEROP_DIR, atEnd, begin, check, end, env, freePorts, gate, scenario, startOp, startQuire,
  unescapeHtml, waitHealthy,
} from '../node-support/support.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.E2E_SCREENSHOTS || join(HERE, '..', '..', 'target', 'e2e-screenshots');
const NAV_TIMEOUT = 15_000;
const CLIENT_ID = 'quire-e2e';
const version = (dir, pkg) => JSON.parse(readFileSync(join(dir, 'node_modules', pkg, 'package.json'), 'utf8')).version;

// Set at start-up.
let LOCAL = ''; // the local-accounts quire
let ORG = ''; // the OIDC quire
let OP = ''; // the OP's issuer
let QUIRE_ORIGINS = new Set();
let OP_ORIGIN = '';
let browser = null;

await begin('e2e', async (work) => {
  const bin = env('QUIRE_BIN');
  console.log(`e2e: playwright-core ${version(HERE, 'playwright-core')}, oidc-provider ${version(INTEROP_DIR, 'oidc-provider')}, node ${process.version}, ${bin}`);
  const [localPort, oidcPort, opPort] = await freePorts(3);
  LOCAL = `http://127.0.0.1:${localPort}`;
  ORG = `http://localhost:${oidcPort}`;
  const clientSecret = randomBytes(24).toString('base64url');
  // The OP's devInteractions give it its own login and consent pages.
  const op = startOp(work, {
    port: opPort,
    rpOrigin: ORG,
    backchannelOrigin: `http://127.0.0.1:${oidcPort}`,
    clientId: CLIENT_ID,
    clientSecret,
  });
  OP = op.issuer;
  QUIRE_ORIGINS = new Set([new URL(LOCAL).origin, new URL(ORG).origin]);
  OP_ORIGIN = new URL(OP).origin;
  // Release profile, each with its own database folder and secret key. argon2 is lowered
  // for speed only; the production parameters are checked by the Rust tests.
  const argon = 'argon2={memory_kib=64,iterations=1}';
  const local = startQuire(work, {
    name: 'local',
    bin,
    port: localPort,
    profile: 'release',
    auth: `{providers=["local"],signup=true,${argon}}`,
  });
  const org = startQuire(work, {
    name: 'oidc',
    bin,
    port: oidcPort,
    profile: 'release',
    auth: `{providers=["oidc"],${argon},oidc={issuer="${OP}",client_id="${CLIENT_ID}",client_secret="${clientSecret}",redirect_url="${ORG}/oidc/callback",display_name="Example IdP",scopes=["openid","email","profile","groups"]}}`,
  });
  await waitHealthy([op, local, org]);

  rmSync(SHOTS, { recursive: true, force: true });
  mkdirSync(SHOTS, { recursive: true });
  // playwright gives every launch a fresh, empty --user-data-dir of its own, under
  // TMPDIR: here the work folder, removed at the end.
  process.env.TMPDIR = join(work, 'tmp');
  mkdirSync(process.env.TMPDIR);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // quire listens on 127.0.0.1 only, so "localhost" must not try ::1 first; no other
      // name resolves (the OP's built-in pages @import a web font: it fails at once).
      '--host-resolver-rules=MAP localhost 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
    ],
    timeout: 30_000,
  });
  atEnd(() => browser.close());
  console.log(`e2e: ${CHROMIUM}, browser ${browser.version()}`);
}, { timeoutSeconds: Number(process.env.HARNESS_TIMEOUT || 180) });

// ---------------------------------------------------------------- the browser

const isQuire = (url) => { try { return QUIRE_ORIGINS.has(new URL(url).origin); } catch { return false; } };
const isOp = (url) => { try { return new URL(url).origin === OP_ORIGIN; } catch { return false; } };
const isLoopback = (url) => {
  try {
    const u = new URL(url);
    return ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname) || ['data:', 'about:', 'blob:'].includes(u.protocol);
  } catch { return true; }
};
const pathOf = (url) => { const u = new URL(url); return u.pathname + u.search; };

/**
 * A browser tab with its own cookie jar, watched from the first byte: console errors,
 * uncaught exceptions, CSP violations (the DOM event, reported through a binding that
 * the page's CSP cannot block), requests leaving loopback, and every document it
 * commits, so that no quire page goes unchecked.
 */
async function newTab(name, { width = 1280, height = 800 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, locale: 'en-GB' });
  const tab = {
    name, context, page: null,
    errors: [], // { kind, text, url, doc }
    external: [],
    documents: [], // { url, status } of main-frame navigation responses, redirects included
    unchecked: null,
    misses: [],
  };
  await context.exposeBinding('__e2eCspViolation', (_source, v) => {
    tab.errors.push({ kind: 'csp', text: `CSP violation: ${v.directive} blocked ${v.blocked || '(inline)'} ${v.sample ?? ''}`.trim(), url: v.source, doc: v.doc });
  });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__e2eCspViolation({
        directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile,
        sample: e.sample, doc: e.documentURI,
      });
    });
  });
  const page = await context.newPage();
  tab.page = page;
  page.setDefaultTimeout(NAV_TIMEOUT);
  page.on('console', (m) => {
    if (m.type() === 'error') tab.errors.push({ kind: 'console', text: m.text(), url: m.location()?.url ?? '', doc: page.url() });
  });
  // quire asks for nothing off-site (no CDN, no web font). No request is intercepted:
  // interception would hide Chromium's report of a missing favicon.
  page.on('request', (r) => {
    if (isLoopback(r.url())) return;
    const from = (() => { try { return r.frame().url(); } catch { return ''; } })();
    tab.external.push({ url: r.url(), from });
  });
  page.on('pageerror', (e) => tab.errors.push({ kind: 'pageerror', text: String(e?.stack ?? e), url: page.url(), doc: page.url() }));
  page.on('response', (r) => {
    const req = r.request();
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) tab.documents.push({ url: r.url(), status: r.status() });
  });
  page.on('framenavigated', (frame) => {
    if (frame !== page.mainFrame()) return;
    if (tab.unchecked) tab.misses.push(tab.unchecked);
    tab.unchecked = isQuire(frame.url()) ? frame.url() : null;
  });
  return tab;
}

/** Runs `action` (a click, a goto) and waits until it has led to a new document and
 *  that document (or, with `until`, the one matching it) has loaded. */
async function navigate(tab, action, until) {
  const { page } = tab;
  const committed = page.waitForEvent('framenavigated', { predicate: (f) => f === page.mainFrame(), timeout: NAV_TIMEOUT });
  await action();
  await committed;
  if (until) await page.waitForURL(until, { waitUntil: 'load', timeout: NAV_TIMEOUT });
  else await page.waitForLoadState('load');
}

const FAILED_STATUS = (status) => new RegExp(`^Failed to load resource: the server responded with a status of ${status}\\b`);

/**
 * Takes the errors recorded so far. Chromium reports a document served with an error
 * status (a 404 page, a 422 form) as a console error; that one is expected when the
 * test asked for that status. On the OP's own pages (not quire's), its favicon 404 is
 * not quire's business either.
 */
function takeErrors(tab, allow = []) {
  const found = tab.errors.splice(0);
  return found.filter((e) => !allow.some((a) => a(e)));
}

const opNoise = (e) => e.kind === 'console' && isOp(e.doc) && /^Failed to load resource/.test(e.text)
  && ((isOp(e.url) && /\/favicon\.ico$/.test(e.url)) || !isLoopback(e.url));

/** Checks a quire page the browser has just landed on. */
async function landed(tab, what, { status = 200, path } = {}) {
  const { page } = tab;
  await page.waitForLoadState('load');
  const url = page.url();
  gate(isQuire(url), `${what}: the browser is on quire`, url);
  if (path) {
    const ok = typeof path === 'function' ? path(new URL(url)) : pathOf(url) === path;
    gate(ok, `${what}: at ${typeof path === 'function' ? 'the expected page' : path}`, url);
  }
  const doc = [...tab.documents].reverse().find((d) => d.url === url);
  gate(doc?.status === status, `${what}: ${pathOf(url)} answered ${status}`, JSON.stringify(doc ?? tab.documents.slice(-3)));
  tab.unchecked = null;

  const basics = await page.evaluate(() => {
    const text = (el) => (el?.textContent ?? '').replace(/\s+/g, ' ').trim();
    const describe = (el) => `<${el.tagName.toLowerCase()}${el.id ? ` id="${el.id}"` : ''}${el.name ? ` name="${el.name}"` : ''}${el.type ? ` type="${el.type}"` : ''}>`;
    const unlabeled = [];
    for (const el of document.querySelectorAll('input, textarea, select')) {
      const type = (el.getAttribute('type') ?? '').toLowerCase();
      if (el.tagName === 'INPUT' && ['hidden', 'submit', 'button', 'reset', 'image'].includes(type)) continue;
      const byLabel = [...(el.labels ?? [])].some((l) => text(l) !== '');
      const byAria = (el.getAttribute('aria-label') ?? '').trim() !== '';
      const byIds = (el.getAttribute('aria-labelledby') ?? '').split(/\s+/).filter(Boolean)
        .some((id) => text(document.getElementById(id)) !== '');
      if (!byLabel && !byAria && !byIds) unlabeled.push(describe(el));
    }
    const nameless = [...document.querySelectorAll('a[href], button')]
      .filter((el) => text(el) === '' && !(el.getAttribute('aria-label') ?? '').trim() && !el.querySelector('img[alt]:not([alt=""])'))
      .map(describe);
    return {
      lang: document.documentElement.getAttribute('lang') ?? '',
      title: document.title.trim(),
      h1: document.querySelectorAll('h1').length,
      unlabeled,
      nameless,
      overflow: document.documentElement.scrollWidth > window.innerWidth + 1,
    };
  });
  check(basics.lang.trim() !== '' && basics.title !== '' && basics.h1 === 1,
    `${what}: <html lang="${basics.lang}">, title "${basics.title}", one h1`, JSON.stringify(basics));
  check(basics.unlabeled.length === 0 && basics.nameless.length === 0,
    `${what}: every form field has a label, every link and button a name`, JSON.stringify(basics));
  await checkFocus(tab, what);

  // Give late reports (favicon, CSP) a moment, then a round trip to flush the events.
  await page.waitForTimeout(50);
  await page.evaluate(() => 0);
  const allowed = status >= 400 ? [(e) => e.kind === 'console' && e.url === url && FAILED_STATUS(status).test(e.text)] : [];
  const errors = takeErrors(tab, [...allowed, opNoise]);
  check(errors.length === 0, `${what}: no console error, no CSP violation`, errors.map((e) => `${e.kind}: ${e.text} (${e.url || e.doc})`).join('\n'));
  const ext = tab.external.splice(0).filter((x) => !isOp(x.from));
  check(ext.length === 0, `${what}: nothing requested off loopback`, ext.map((x) => `${x.url} from ${x.from}`).join('\n'));
  return basics;
}

/** On an OP page: no script error and no CSP violation (its favicon 404 and its
 *  failing web-font @import are the OP's own business). */
async function landedOp(tab, what) {
  const { page } = tab;
  await page.waitForLoadState('load');
  gate(isOp(page.url()), `${what}: the browser is on the OP`, page.url());
  await page.waitForTimeout(50);
  await page.evaluate(() => 0);
  const errors = takeErrors(tab, [opNoise]);
  check(errors.length === 0, `${what}: no console error, no CSP violation`, errors.map((e) => `${e.kind}: ${e.text} (${e.url || e.doc})`).join('\n'));
  tab.external.splice(0);
}

/**
 * Keyboard focus: Tab through the page from the top; every element reached must look
 * different focused (outline or box-shadow) from how it looked before anything had focus.
 */
async function checkFocus(tab, what) {
  const { page } = tab;
  const count = await page.evaluate(() => {
    document.activeElement?.blur?.();
    const style = (el) => {
      const s = getComputedStyle(el);
      return `${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor} | ${s.boxShadow}`;
    };
    const all = [...document.querySelectorAll('a[href], button, input, textarea, select, [tabindex]')];
    window.__e2eFocus = { all, before: all.map(style), style };
    return all.length;
  });
  if (count === 0) return;
  const seen = [];
  const invisible = [];
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press('Tab');
    const r = await page.evaluate(() => {
      const { all, before, style } = window.__e2eFocus;
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      const idx = all.indexOf(el);
      const label = `${el.tagName.toLowerCase()}${el.type ? `[type=${el.type}]` : ''} "${(el.textContent || el.name || el.id || '').replace(/\s+/g, ' ').trim().slice(0, 40)}"`;
      return { idx, label, kind: el.tagName.toLowerCase(), before: before[idx], after: style(el) };
    });
    if (!r || r.idx < 0 || seen.some((s) => s.idx === r.idx)) break; // back at the top, or out of the page
    seen.push(r);
    if (r.before === r.after) invisible.push(`${r.label}: ${r.after}`);
  }
  await page.evaluate(() => { document.activeElement?.blur?.(); delete window.__e2eFocus; });
  const kinds = [...new Set(seen.map((s) => s.kind))].join(', ');
  check(seen.length > 0 && invisible.length === 0,
    `${what}: keyboard focus visible on all ${seen.length} elements Tab reaches (${kinds})`,
    invisible.length ? `no visible change on focus:\n${invisible.join('\n')}` : 'Tab reached nothing');
}

/** What the main nav offers. */
async function nav(page) {
  return page.evaluate(() => {
    const n = document.querySelector('nav[aria-label="Main"]');
    const items = n ? [...n.querySelectorAll('a, button')].map((e) => e.textContent.replace(/\s+/g, ' ').trim()) : [];
    return items.join(' | ');
  });
}

async function flash(page) {
  const el = page.locator('.flash');
  return (await el.count()) ? (await el.first().innerText()).trim() : '';
}

/** Full-page screenshots at phone and desktop width; at 390 px nothing may stick out sideways. */
async function shoot(tab, name) {
  const { page } = tab;
  const original = page.viewportSize();
  const files = [];
  for (const [width, height] of [[390, 844], [1280, 800]]) {
    await page.setViewportSize({ width, height });
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r())));
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `${name} at ${width} px: no sideways scrolling`, `the page is ${overflow}px wider than the window`);
    const file = join(SHOTS, `${name}-${width}.png`);
    await page.screenshot({ path: file, fullPage: true });
    files.push(file);
  }
  await page.setViewportSize(original);
  console.log(`        screenshots: ${files.join(', ')}`);
}

/** End of a tab: every quire page it landed on was checked, and nothing was reported late. */
async function noteMisses(tab) {
  const misses = tab.misses.splice(0);
  if (tab.unchecked) misses.push(tab.unchecked);
  tab.unchecked = null;
  check(misses.length === 0, `${tab.name}: every quire page the browser landed on was checked`, misses.join('\n'));
  await tab.page.waitForTimeout(300);
  await tab.page.evaluate(() => 0);
  const late = takeErrors(tab, [opNoise]);
  check(late.length === 0, `${tab.name}: no console error or CSP violation reported late`, late.map((e) => `${e.kind}: ${e.text} (${e.url || e.doc})`).join('\n'));
}

// ---------------------------------------------------------------- the people

const stamp = Date.now().toString(36);
const owner = {
  name: 'Ada Lovelace',
  email: `ada-${stamp}@example.org`,
  password: 'velvet lantern orbit maple 42',
};
const POST = {
  title: 'Notes on the Analytical Engine',
  body: [
    'The engine weaves algebraic patterns, as the Jacquard loom weaves flowers and leaves.',
    '',
    '## What it can do',
    '',
    'Read the [original notes](https://example.org/notes/g) for the long version.',
    '',
    '```rust',
    'fn bernoulli(n: u32) -> f64 {',
    '    // <b>not bold</b> & not markup',
    '    n as f64 / 2.0',
    '}',
    '```',
    '',
  ].join('\n'),
};
const q = (path) => `${LOCAL}${path}`;

// ---------------------------------------------------------------- a CSP self-test

await scenario('the watchers see what they watch', async () => {
  const tab = await newTab('self-test');
  await navigate(tab, () => tab.page.goto(q('/')));
  await landed(tab, 'home (self-test)', { path: '/' });
  // Late reports (a missing favicon is one) have had time to arrive.
  await tab.page.waitForTimeout(500);
  await tab.page.evaluate(() => 0);
  const late = takeErrors(tab);
  check(late.length === 0, 'home (self-test): no late console error (favicon and the like)', late.map((e) => `${e.kind}: ${e.text} (${e.url})`).join('\n'));
  // Injected by the test, not by quire: an inline style, which quire's CSP must block.
  await tab.page.evaluate(() => {
    const s = document.createElement('style');
    s.textContent = 'body { background: red }';
    document.head.append(s);
  });
  await tab.page.waitForTimeout(100);
  await tab.page.evaluate(() => 0);
  const seen = takeErrors(tab);
  check(seen.some((e) => e.kind === 'csp' && /style-src/.test(e.text)),
    'an injected inline <style> is blocked by quire\'s CSP and the securitypolicyviolation listener reports it', JSON.stringify(seen));
  check(seen.some((e) => e.kind === 'console' && /Content Security Policy/.test(e.text)),
    '... and Chromium\'s console error for it is caught too', JSON.stringify(seen));
  await noteMisses(tab);
  await tab.context.close();
});

// ---------------------------------------------------------------- self-hoster

let postSlug = '';

await scenario('self-hoster: sign up, log out, log in with remember me', async () => {
  const tab = await newTab('self-hoster');
  const { page } = tab;
  await navigate(tab, () => page.goto(q('/')));
  await landed(tab, 'home, nobody logged in', { path: '/' });
  check(await nav(page) === 'Log in | Sign up', 'the nav offers Log in and Sign up', await nav(page));
  await shoot(tab, 'home-empty');

  await navigate(tab, () => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Sign up' }).click());
  await landed(tab, 'signup page', { path: '/signup' });
  await shoot(tab, 'signup');
  await page.getByLabel('Email').fill(owner.email);
  await page.getByLabel('Name').fill(owner.name);
  await page.getByLabel('Password').fill(owner.password);
  await navigate(tab, () => page.getByRole('button', { name: 'Sign up' }).click());
  await landed(tab, 'after signup', { path: '/dashboard' });
  check((await flash(page)).startsWith(`Welcome to quire, ${owner.name}.`), 'signup greets by name', await flash(page));
  check(await nav(page) === 'Dashboard | Account | Log out', 'logged in, the nav offers Dashboard, Account and Log out', await nav(page));
  let session = (await tab.context.cookies()).find((c) => c.name === 'quire_session');
  check(session && session.expires === -1 && session.httpOnly, 'after signup the session cookie is a browser-session cookie, HttpOnly', JSON.stringify(session));

  await navigate(tab, () => page.getByRole('button', { name: 'Log out' }).click());
  await landed(tab, 'after logout', { path: '/' });
  check(await flash(page) === 'You are logged out.', 'logout says "You are logged out."', await flash(page));
  check(await nav(page) === 'Log in | Sign up', 'logged out, the nav offers Log in and Sign up again', await nav(page));

  await navigate(tab, () => page.getByRole('link', { name: 'Log in' }).click());
  await landed(tab, 'login page', { path: '/login' });
  await shoot(tab, 'login');
  await page.getByLabel('Email').fill(owner.email);
  await page.getByLabel('Password').fill(owner.password);
  await page.getByLabel('Remember me').check();
  await navigate(tab, () => page.getByRole('button', { name: 'Log in' }).click());
  await landed(tab, 'after login', { path: '/dashboard' });
  check(await flash(page) === `Welcome back, ${owner.name}.`, 'login says "Welcome back"', await flash(page));
  session = (await tab.context.cookies()).find((c) => c.name === 'quire_session');
  const days = session ? (session.expires * 1000 - Date.now()) / 86_400_000 : 0;
  check(days > 7, `with remember me the session cookie persists (${days.toFixed(1)} days)`, JSON.stringify(session));

  // -------------------------------------------------------------- the post
  console.log('\n# self-hoster: write, read, edit and delete a Markdown post');
  const empty = await page.locator('.empty').innerText();
  check(/not written anything/.test(empty), 'the dashboard says there are no posts yet', empty);
  await page.getByLabel('Title').fill(POST.title);
  await page.getByLabel(/^Body/).fill(POST.body);
  check(await page.getByLabel(/^Publish \(/).isChecked(), 'Publish is ticked by default');
  await navigate(tab, () => page.getByRole('button', { name: 'Save' }).click());
  await landed(tab, 'the new post', { path: (u) => u.pathname.startsWith('/posts/') });
  postSlug = new URL(page.url()).pathname.split('/')[2];
  check(await flash(page) === 'Published.', 'saving says "Published."', await flash(page));
  const prose = page.locator('.prose');
  check(await page.locator('h1').innerText() === POST.title, 'the post page shows its title');
  check(await prose.locator('h2').innerText() === 'What it can do', 'the Markdown heading is an <h2>', await prose.innerHTML());
  const link = prose.getByRole('link', { name: 'original notes' });
  check(await link.getAttribute('href') === 'https://example.org/notes/g', 'the Markdown link is a link', await prose.innerHTML());
  const code = prose.locator('pre code');
  check((await code.count()) === 1 && (await code.innerText()).includes('// <b>not bold</b> & not markup'),
    'the fenced code block is <pre><code> with its text intact (escaped, not markup)', await prose.innerHTML());
  check(await prose.locator('b').count() === 0, 'nothing inside the code block became markup');
  check(/By Ada Lovelace/.test(await page.locator('.meta').first().innerText()), 'the byline names the author');
  const type = await prose.locator('p').first().evaluate((el) => {
    const s = getComputedStyle(el);
    const size = parseFloat(s.fontSize);
    return { size, lineHeight: parseFloat(s.lineHeight) / size, ems: el.getBoundingClientRect().width / size };
  });
  check(type.size >= 16 && type.lineHeight >= 1.4 && type.ems <= 42,
    `readable type: ${type.size}px text, line height ${type.lineHeight.toFixed(2)}, lines ${type.ems.toFixed(1)} em wide (about ${Math.round(type.ems * 1.9)} characters)`, JSON.stringify(type));
  await shoot(tab, 'post');

  await navigate(tab, () => page.locator('a.brand').click());
  await landed(tab, 'home with the post', { path: '/' });
  const item = page.locator('.post-list li').filter({ hasText: POST.title });
  check(await item.count() === 1 && /By Ada Lovelace/.test(await item.innerText()), 'the home page lists the post with its author', await page.locator('main').innerText());
  check(await nav(page) === 'Dashboard | Account | Log out', 'the nav still shows the author logged in', await nav(page));
  await shoot(tab, 'home');
  await navigate(tab, () => item.getByRole('link', { name: POST.title, exact: true }).click());
  await landed(tab, 'the post from the home page', { path: `/posts/${postSlug}` });

  let feed = await page.request.get(q('/feed.xml'));
  let xml = await feed.text();
  check(feed.status() === 200 && /atom\+xml/.test(feed.headers()['content-type'] ?? ''), '/feed.xml is an Atom feed', `${feed.status()} ${feed.headers()['content-type']}`);
  const entry = xml.split('<entry>').find((e) => e.includes(POST.title)) ?? '';
  check(entry.includes(`/posts/${postSlug}`), 'the feed has an entry for the post, linking to it', xml.slice(0, 1500));
  const content = unescapeHtml(entry);
  check(/<h2[^>]*>What it can do<\/h2>/.test(content) && content.includes('href="https://example.org/notes/g"') && /<pre[^>]*><code/.test(content),
    'the feed entry carries the rendered heading, link and code block', entry.slice(0, 1500));

  await navigate(tab, () => page.getByRole('link', { name: 'Dashboard' }).click());
  await landed(tab, 'dashboard with the post', { path: '/dashboard' });
  const row = page.locator('.posts-table tbody tr').filter({ hasText: POST.title });
  check(await row.count() === 1 && /Published/.test(await row.innerText()), 'the dashboard lists the post as published');
  await shoot(tab, 'dashboard');

  // Empty title, as a person would leave it: the browser itself stops the form
  // (required); a title of only spaces gets past the browser and quire explains.
  console.log('\n# errors as a person sees them: empty title');
  await page.getByLabel('Title').fill('');
  await page.getByLabel(/^Body/).fill('A draft with no title yet.');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.waitForTimeout(300);
  const blocked = await page.getByLabel('Title').evaluate((el) => ({ valid: el.validity.valid, message: el.validationMessage }));
  check(pathOf(page.url()) === '/dashboard' && !blocked.valid && blocked.message !== '',
    `an empty title: the browser keeps the form and says "${blocked.message}"`, JSON.stringify(blocked));
  await page.getByLabel('Title').fill('   ');
  await navigate(tab, () => page.getByRole('button', { name: 'Save' }).click());
  await landed(tab, 'dashboard after a blank title', { status: 422, path: '/posts' });
  await expectFieldError(page, 'title', /title/i, 'a blank title');
  check(await page.getByLabel(/^Body/).inputValue() === 'A draft with no title yet.', 'a blank title: the body typed is kept');
  check(/not saved/.test(await page.locator('#new-post ~ .flash-error, .card .flash-error').first().innerText()), 'a blank title: the form says the post was not saved');
  await shoot(tab, 'dashboard-error');

  // -------------------------------------------------------------- edit
  console.log('\n# self-hoster: edit and delete');
  await navigate(tab, () => page.goto(q(`/posts/${postSlug}`)));
  await landed(tab, 'the post, to edit', { path: `/posts/${postSlug}` });
  await navigate(tab, () => page.getByRole('link', { name: 'Edit' }).click());
  await landed(tab, 'edit page', { path: `/posts/${postSlug}/edit` });
  const heldTitle = await page.getByLabel('Title').inputValue();
  const heldBody = await page.getByLabel(/^Body/).inputValue();
  check(heldTitle === POST.title && heldBody.trim() === POST.body.trim(),
    'the edit form holds the title and the Markdown as written', `${heldTitle}\n${heldBody}`);
  const edited = `${POST.title}, revised`;
  await page.getByLabel('Title').fill(edited);
  await page.getByLabel(/^Body/).fill(`${POST.body}\nA paragraph added later.\n`);
  await navigate(tab, () => page.getByRole('button', { name: 'Save changes' }).click());
  await landed(tab, 'the edited post', { path: `/posts/${postSlug}` });
  check(await flash(page) === 'Saved.', 'editing says "Saved."', await flash(page));
  check(await page.locator('h1').innerText() === edited && /A paragraph added later\./.test(await prose.innerText()),
    'the post shows the new title and paragraph at the same address');
  feed = await page.request.get(q('/feed.xml'));
  xml = await feed.text();
  check(xml.includes(edited) && xml.includes('A paragraph added later.'), 'the feed shows the edit');

  // -------------------------------------------------------------- delete
  await navigate(tab, () => page.getByRole('button', { name: 'Delete' }).click());
  await landed(tab, 'dashboard after delete', { path: '/dashboard' });
  check(await flash(page) === `Deleted “${edited}”.`, 'deleting says which post went', await flash(page));
  check(await page.locator('.posts-table').count() === 0, 'the dashboard lists no posts');
  await navigate(tab, () => page.goto(q(`/posts/${postSlug}`)));
  await landed(tab, 'the deleted post', { status: 404, path: `/posts/${postSlug}` });
  check(/not found/i.test(await page.locator('h1').innerText()), 'the deleted post\'s address shows the 404 page', await page.locator('main').innerText());
  await navigate(tab, () => page.locator('a.brand').click());
  await landed(tab, 'home after delete', { path: '/' });
  check(!(await page.locator('main').innerText()).includes(POST.title), 'the home page no longer lists it');
  xml = await (await page.request.get(q('/feed.xml'))).text();
  check(!xml.includes(POST.title), 'the feed no longer has it');

  await navigate(tab, () => page.getByRole('button', { name: 'Log out' }).click());
  await landed(tab, 'after the last logout', { path: '/' });
  check(await flash(page) === 'You are logged out.' && await nav(page) === 'Log in | Sign up', 'logged out again', `${await flash(page)} / ${await nav(page)}`);
  await navigate(tab, () => page.goto(q('/dashboard')));
  await landed(tab, 'the dashboard, logged out', { path: '/login?next=%2Fdashboard' });
  check((await tab.context.cookies()).every((c) => c.name !== 'quire_session'), 'no session cookie is left');
  await noteMisses(tab);
  await tab.context.close();
});

/** The field's error sits right under it, names it (aria-describedby), and says `re`. */
async function expectFieldError(page, field, re, what) {
  const info = await page.evaluate((name) => {
    const input = document.querySelector(`[name="${name}"]`);
    const errors = document.getElementById(`${name}-errors`);
    if (!input || !errors) return null;
    const a = input.getBoundingClientRect();
    const b = errors.getBoundingClientRect();
    return {
      text: errors.textContent.replace(/\s+/g, ' ').trim(),
      describedBy: (input.getAttribute('aria-describedby') ?? '').split(/\s+/).includes(errors.id),
      invalid: input.getAttribute('aria-invalid') === 'true',
      sameField: input.closest('.field') === errors.closest('.field'),
      gap: b.top - a.bottom,
      color: getComputedStyle(errors).color,
      visible: b.height > 0,
    };
  }, field);
  check(info && re.test(info.text) && info.visible, `${what}: the ${field} field says "${info?.text}"`, JSON.stringify(info));
  check(info && info.describedBy && info.invalid && info.sameField && info.gap >= 0 && info.gap < 120,
    `${what}: the message sits under the ${field} field, which is marked invalid and described by it`, JSON.stringify(info));
}

// ---------------------------------------------------------------- errors

await scenario('errors as a person sees them: wrong password, duplicate email, short password', async () => {
  const tab = await newTab('visitor');
  const { page } = tab;
  await navigate(tab, () => page.goto(q('/login')));
  await landed(tab, 'login page', { path: '/login' });
  await page.getByLabel('Email').fill(owner.email);
  await page.getByLabel('Password').fill('velvet lantern orbit maple 24');
  await page.getByLabel('Remember me').check();
  await navigate(tab, () => page.getByRole('button', { name: 'Log in' }).click());
  await landed(tab, 'login with a wrong password', { status: 401, path: '/login' });
  const err = await page.evaluate(() => {
    const e = document.querySelector('.flash-error');
    const form = document.querySelector('form[action="/login"]');
    if (!e || !form) return null;
    return {
      text: e.textContent.trim(), role: e.getAttribute('role'),
      sameCard: e.closest('.card') === form.closest('.card'),
      describes: (document.getElementById('email')?.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean)
        .some((id) => document.getElementById(id)?.contains(e)),
      gap: form.getBoundingClientRect().top - e.getBoundingClientRect().bottom,
    };
  });
  check(err && err.text === 'Incorrect email or password.' && err.role === 'alert', 'a wrong password: "Incorrect email or password." as an alert', JSON.stringify(err));
  check(err && err.sameCard && err.gap >= 0 && err.gap < 80, 'a wrong password: the message sits right above the form', JSON.stringify(err));
  check(err?.describes, 'a wrong password: the email field is described by the message (screen readers read it)', JSON.stringify(err));
  check(await page.getByLabel('Email').inputValue() === owner.email, 'a wrong password: the email typed is kept');
  check(await page.getByLabel('Password').inputValue() === '', 'a wrong password: the password is not echoed back');
  check(await page.getByLabel('Remember me').isChecked(), 'a wrong password: "Remember me" stays ticked');
  await shoot(tab, 'login-error');

  await navigate(tab, () => page.goto(q('/signup')));
  await landed(tab, 'signup page', { path: '/signup' });
  await page.getByLabel('Email').fill(owner.email);
  await page.getByLabel('Name').fill('Ada Again');
  await page.getByLabel('Password').fill('another long enough passphrase');
  await navigate(tab, () => page.getByRole('button', { name: 'Sign up' }).click());
  await landed(tab, 'signup with a taken email', { status: 422, path: '/signup' });
  await expectFieldError(page, 'email', /already exists/, 'a taken email');
  check(await page.getByLabel('Email').inputValue() === owner.email && await page.getByLabel('Name').inputValue() === 'Ada Again',
    'a taken email: email and name typed are kept');
  check(await page.getByLabel('Password').inputValue() === '', 'a taken email: the password is not echoed back');

  await page.getByLabel('Email').fill(`grace-${stamp}@example.org`);
  await page.getByLabel('Name').fill('Grace Hopper');
  await page.getByLabel('Password').fill('short one');
  await navigate(tab, () => page.getByRole('button', { name: 'Sign up' }).click());
  await landed(tab, 'signup with a short password', { status: 422, path: '/signup' });
  await expectFieldError(page, 'password', /at least 15 characters/, 'a short password');
  check(await page.getByLabel('Email').inputValue() === `grace-${stamp}@example.org` && await page.getByLabel('Name').inputValue() === 'Grace Hopper',
    'a short password: email and name typed are kept');
  check(/correct the marked fields/.test(await flash(page)), 'a short password: the form says to correct the marked fields', await flash(page));
  await shoot(tab, 'signup-error');

  await navigate(tab, () => page.goto(q('/posts/no-such-post')));
  await landed(tab, 'a post that does not exist', { status: 404, path: '/posts/no-such-post' });
  check(/not found/i.test(await page.locator('h1').innerText()) && await page.getByRole('link', { name: /home page/i }).count() === 1,
    'the 404 page says so and links home', await page.locator('main').innerText());
  await shoot(tab, '404');
  await noteMisses(tab);
  await tab.context.close();
});

// ---------------------------------------------------------------- organisation

await scenario('organisation: log in through the OP, write a post, log out at the IdP', async () => {
  const tab = await newTab('organisation');
  const { page } = tab;
  const o = (path) => `${ORG}${path}`;
  await navigate(tab, () => page.goto(o('/')));
  await landed(tab, 'org home, nobody logged in', { path: '/' });
  check(await nav(page) === 'Log in', 'with only the IdP there is no Sign up, just Log in', await nav(page));

  // Through the OP's own pages: its login form (devInteractions takes any password),
  // then its consent page, which it shows again after a logout has revoked the grant.
  async function loginAtOp() {
    await navigate(tab, () => page.getByRole('link', { name: 'Log in' }).click(), (u) => isOp(u.href));
    await landedOp(tab, 'the OP\'s login page');
    gate(await page.locator('input[name=login]').count() === 1, 'the OP shows its own login form', await page.content());
    await page.locator('input[name=login]').fill('alice');
    await page.locator('input[name=password]').fill('any password at all');
    await navigate(tab, () => page.locator('button[type=submit]').click());
    if (isOp(page.url())) {
      await landedOp(tab, 'the OP\'s consent page');
      gate(await page.getByRole('button', { name: 'Continue' }).count() === 1, 'the OP asks for consent', await page.content());
      await navigate(tab, () => page.getByRole('button', { name: 'Continue' }).click(), (u) => isQuire(u.href));
    }
  }

  await loginAtOp();
  await landed(tab, 'back from the OP', { path: '/dashboard' });
  check(await flash(page) === 'Welcome, Alice Interop.', 'the dashboard greets the name from the OP\'s claims', await flash(page));
  check(/Logged in as Alice Interop/.test(await page.locator('main').innerText()), 'the dashboard shows who is logged in, by the name from the claims', await page.locator('main').innerText());
  check(await nav(page) === 'Dashboard | Account | Log out', 'the nav offers Dashboard, Account and Log out', await nav(page));

  await page.getByLabel('Title').fill('Quarterly planning notes');
  await page.getByLabel(/^Body/).fill('Written after logging in through **the IdP**.\n\n- one\n- two\n');
  await navigate(tab, () => page.getByRole('button', { name: 'Save' }).click());
  await landed(tab, 'the org post', { path: (u) => u.pathname.startsWith('/posts/') });
  check(await flash(page) === 'Published.' && /By Alice Interop/.test(await page.locator('.meta').first().innerText()),
    'the post is published under the name from the claims', await page.locator('main').innerText());
  check(await page.locator('.prose strong').innerText() === 'the IdP', 'its Markdown is rendered');
  await navigate(tab, () => page.getByRole('link', { name: 'Dashboard' }).click());
  await landed(tab, 'org dashboard', { path: '/dashboard' });
  await shoot(tab, 'dashboard-org');

  // Log out from quire: quire ends its session and sends the browser to the IdP, whose
  // own page asks; confirming there brings the browser back to quire, logged out.
  await navigate(tab, () => page.getByRole('button', { name: 'Log out' }).click(), (u) => isOp(u.href));
  await landedOp(tab, 'the OP\'s logout page');
  const yes = page.getByRole('button', { name: 'Yes, sign me out' });
  gate(await yes.count() === 1, 'the IdP asks "Do you want to sign-out"', await page.content());
  await navigate(tab, () => yes.click(), (u) => isQuire(u.href));
  await landed(tab, 'back from the IdP\'s logout', { path: (u) => u.pathname === '/' });
  check(await flash(page) === 'You are logged out.', 'quire says "You are logged out."', await flash(page));
  check(await nav(page) === 'Log in', 'the nav shows Log in again', await nav(page));
  // The IdP session went too: logging in asks for the password again.
  await loginAtOp();
  await landed(tab, 'logged in again', { path: '/dashboard' });
  check(await flash(page) === 'Welcome, Alice Interop.', 'a second login through the OP\'s form works');

  // Log out at the IdP alone (another tab, the IdP's own portal): the OP tells quire
  // over the back channel, and coming back to quire finds the person logged out.
  await navigate(tab, () => page.goto(`${OP}/session/end`), (u) => isOp(u.href));
  await landedOp(tab, 'the OP\'s own logout page');
  await navigate(tab, () => page.getByRole('button', { name: 'Yes, sign me out' }).click(), (u) => isOp(u.href));
  await landedOp(tab, 'the OP\'s sign-out confirmation');
  check(/Sign-out Success/.test(await page.title()), 'the IdP confirms the sign-out', await page.title());
  await navigate(tab, () => page.goto(o('/')));
  await landed(tab, 'back at quire after logging out at the IdP', { path: '/' });
  check(await nav(page) === 'Log in', 'quire shows the person logged out', await nav(page));
  await navigate(tab, () => page.goto(o('/dashboard')), (u) => isOp(u.href));
  await landedOp(tab, 'the OP\'s login page, again');
  check(await page.locator('input[name=login]').count() === 1, 'the dashboard sends the browser to the IdP to log in again');
  await noteMisses(tab);
  await tab.context.close();
});

console.log(`\nscreenshots: ${SHOTS} (${readdirSync(SHOTS).filter((f) => f.endsWith('.png')).length} files)`);
await end();
