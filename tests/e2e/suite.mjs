// quire end to end in a real browser: Debian's Chromium, headless, driven by
// playwright-core. Started by run.sh with QUIRE_BIN (the quire binary), HARNESS_TIMEOUT
// (seconds, start-up included), CHROMIUM (the browser, /usr/bin/chromium) and
// E2E_SCREENSHOTS (the screenshots' folder, default target/e2e-screenshots). It starts,
// on free loopback ports:
//   - a quire with local accounts (signup open), addressed as 127.0.0.1, whose
//     site.timezone is SITE_TZ (authors type publish_at in it) and whose [mail] sends
//     to the next one, with site.url its own address (mailed links are absolute),
//   - the mail tests' SMTP server (tests/mail/smtp_server.py, aiosmtpd) on 127.0.0.1,
//     which keeps every message it accepts for the test to read,
//   - node oidc-provider (tests/interop/op.mjs) on 127.0.0.1, and a second quire with
//     providers ["oidc"] pointed at it, addressed as localhost, so the trip to the OP
//     and back is cross-site, as in production,
//   - a third quire with local accounts for passkeys, addressed as localhost with
//     site.url its own address (WebAuthn's relying party id is a domain, never an IP;
//     localhost is a secure context over plain HTTP), where Chromium's virtual
//     authenticator (DevTools protocol) makes and uses a passkey,
// then the browser, and stops everything at the end.
//
// Every quire page the browser lands on is checked: status, no console error, no
// Content-Security-Policy violation, no request off loopback, lang, title, a label for
// every form field shown, a visible keyboard focus on everything Tab reaches. Prints one line
// per check and ends with "N passed, N failed".
//
// One post is scheduled a minute or so ahead (publish_at has minute precision, as the
// form's datetime-local field does): the checks that it is nowhere public run at once,
// the other scenarios run while it is not yet due, and the last scenario waits for what
// is left of that minute before a reader finds it.
import { createHmac, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

import { chromium } from 'playwright-core';

import {
  INTEROP_DIR, atEnd, begin, check, end, env, freePorts, gate, scenario as runScenario, startOp, startQuire,
  startSmtp, unescapeHtml, waitHealthy,
} from '../node-support/support.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.E2E_SCREENSHOTS || join(HERE, '..', '..', 'target', 'e2e-screenshots');
const NAV_TIMEOUT = 15_000;
const CLIENT_ID = 'quire-e2e';
// The local quire's site.timezone: 5:45 from UTC and without summer time, so a publish_at
// read in the wrong zone is hours off, not a few seconds.
const SITE_TZ = 'Asia/Kathmandu';
// E2E_ONLY (a regular expression): run only the scenarios whose names match it, while
// working on them. A scenario that needs an earlier one fails its first gate without it.
const ONLY = process.env.E2E_ONLY ? new RegExp(process.env.E2E_ONLY) : null;
const version = (dir, pkg) => JSON.parse(readFileSync(join(dir, 'node_modules', pkg, 'package.json'), 'utf8')).version;

// Set at start-up.
let LOCAL = ''; // the local-accounts quire
let ORG = ''; // the OIDC quire
let PASSKEYS = ''; // the local-accounts quire for passkeys
let OP = ''; // the OP's issuer
let QUIRE_ORIGINS = new Set();
let OP_ORIGIN = '';
let SMTP = null; // the SMTP server the local quire mails to
let browser = null;

await begin('e2e', async (work) => {
  const bin = env('QUIRE_BIN');
  console.log(`e2e: playwright-core ${version(HERE, 'playwright-core')}, oidc-provider ${version(INTEROP_DIR, 'oidc-provider')}, node ${process.version}, ${bin}`);
  const [localPort, oidcPort, opPort, smtpPort, passkeyPort] = await freePorts(5);
  LOCAL = `http://127.0.0.1:${localPort}`;
  ORG = `http://localhost:${oidcPort}`;
  PASSKEYS = `http://localhost:${passkeyPort}`;
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
  SMTP = startSmtp(work, { port: smtpPort });
  QUIRE_ORIGINS = new Set([new URL(LOCAL).origin, new URL(ORG).origin, new URL(PASSKEYS).origin]);
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
    site: `{timezone="${SITE_TZ}",url="${LOCAL}"}`,
    mail: SMTP.mailTable('quire e2e <blog@example.org>'),
  });
  const org = startQuire(work, {
    name: 'oidc',
    bin,
    port: oidcPort,
    profile: 'release',
    auth: `{providers=["oidc"],${argon},oidc={issuer="${OP}",client_id="${CLIENT_ID}",client_secret="${clientSecret}",redirect_url="${ORG}/oidc/callback",display_name="Example IdP",scopes=["openid","email","profile","groups"]}}`,
  });
  const passkeys = startQuire(work, {
    name: 'passkeys',
    bin,
    port: passkeyPort,
    profile: 'release',
    auth: `{providers=["local"],signup=true,${argon}}`,
    site: `{url="${PASSKEYS}"}`,
  });
  await waitHealthy([op, SMTP, local, org, passkeys]);

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
}, { timeoutSeconds: Number(process.env.HARNESS_TIMEOUT || 300) });

/** A scenario (support.mjs), unless E2E_ONLY leaves it out; says how long it took. */
async function scenario(name, body) {
  if (ONLY && !ONLY.test(name)) {
    console.log(`\n# ${name}: skipped (E2E_ONLY)`);
    return;
  }
  const began = Date.now();
  await runScenario(name, body);
  console.log(`        (${Math.round((Date.now() - began) / 1000)}s)`);
}

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
 * commits, so that no quire page goes unchecked. With `javaScript: false` the pages'
 * own scripts do not run (the test's evaluations still do; the CSP listener does not,
 * but Chromium's console error for a violation is still caught).
 */
async function newTab(name, { width = 1280, height = 800, javaScript = true } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, locale: 'en-GB', javaScriptEnabled: javaScript });
  const tab = {
    name, context, page: null, javaScript,
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
      // Not rendered (a `hidden` username field for password managers): nobody sees it,
      // and neither do screen readers.
      if (!el.checkVisibility()) continue;
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
    // A frame for the new width; with the page's JavaScript off, no callback runs.
    if (tab.javaScript) await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r())));
    else await page.waitForTimeout(100);
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
  check(await nav(page) === 'Dashboard | Images | Account | Log out', 'logged in, the nav offers Dashboard, Images, Account and Log out', await nav(page));
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
  check(await nav(page) === 'Dashboard | Images | Account | Log out', 'the nav still shows the author logged in', await nav(page));
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

// ---------------------------------------------------------------- a scheduled post

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** The instant `ms` on the site's clocks (SITE_TZ): { year, month, day, hour, minute }. */
function siteClock(ms) {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone: SITE_TZ, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).formatToParts(new Date(ms));
  return Object.fromEntries(parts.filter((p) => p.type !== 'literal').map((p) => [p.type, p.value]));
}

/** `ms` as the post form's datetime-local value on the site's clocks ("2026-12-01T19:40"). */
function localInput(ms) {
  const c = siteClock(ms);
  return `${c.year}-${c.month}-${c.day}T${c.hour}:${c.minute}`;
}

/** `ms` as quire shows a scheduled time, zone name left out ("1 Dec 2026, 19:40"). */
function localShown(ms) {
  const c = siteClock(ms);
  return `${Number(c.day)} ${MONTHS[Number(c.month) - 1]} ${c.year}, ${c.hour}:${c.minute}`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Titles of the posts a listing (home, tag, author page) shows, in order. */
const listedTitles = (page) => page.locator('.post-list > li h2').allInnerTexts();

/** Tag links under the post or listing item `scope`: [{ name, href }]. */
const tagLinks = (scope) => scope.getByRole('list', { name: 'Tags' }).first().getByRole('link')
  .evaluateAll((as) => as.map((a) => ({ name: a.textContent.trim(), href: a.getAttribute('href') })));

/** The highlighted code in `scope`: its spans' classes, and whether every class is hl-. */
const highlighting = (scope) => scope.evaluate((el) => {
  const spans = [...el.querySelectorAll('pre code span')];
  const classes = [...new Set(spans.flatMap((s) => [...s.classList]))];
  const keyword = spans.find((s) => s.textContent === 'fn');
  const code = el.querySelector('pre code');
  return {
    spans: spans.length,
    classes,
    onlyHl: classes.length > 0 && classes.every((c) => /^hl-[a-z0-9-]+$/.test(c)),
    keywordClass: keyword?.className ?? null,
    // What a reader sees: the keyword in another colour than the code around it.
    keywordColour: keyword ? getComputedStyle(keyword).color : null,
    codeColour: code ? getComputedStyle(code).color : null,
    text: code?.textContent ?? '',
  };
});

const writer = {
  name: 'Barbara Liskov',
  email: `barbara-${stamp}@example.org`,
  password: 'substitution principle kept 1987',
};
const FIRST = {
  title: 'Why the tests come first',
  tags: 'Testing',
  body: 'A test that cannot fail tells you nothing.\n\nWrite the one that can, then the code.\n',
};
// Tags typed as a person might: spaces around them, another case for one that exists.
const SCHEDULED = {
  title: 'Property tests that shrink',
  tags: ' Rust,  testing ',
  word: 'quickcheck',
  body: [
    'Property tests find a failing input; quickcheck then shrinks it to the smallest one.',
    '',
    '```rust',
    'fn shrink(n: u32) -> Option<u32> {',
    '    if n == 0 { None } else { Some(n / 2) }',
    '}',
    '```',
    '',
  ].join('\n'),
  more: 'Shrinking stops at zero.',
};
// The least time between saving the scheduled post and its being due: room for every
// "nowhere public yet" check (the scenario fails if they take longer).
const SCHEDULE_LEAD_MS = 20_000;

let scheduled = null; // { at (ms), slug, handle, firstSlug } once saved

await scenario('writer: a tagged post with a code block, previewed without and with JavaScript, then scheduled', async () => {
  const tab = await newTab('writer');
  const { page } = tab;
  await navigate(tab, () => page.goto(q('/signup')));
  await landed(tab, 'signup page (writer)', { path: '/signup' });
  await page.getByLabel('Email').fill(writer.email);
  await page.getByLabel('Name').fill(writer.name);
  await page.getByLabel('Password').fill(writer.password);
  await navigate(tab, () => page.getByRole('button', { name: 'Sign up' }).click());
  await landed(tab, 'the writer\'s dashboard', { path: '/dashboard' });

  // A post published now, tagged Testing: its tag and author pages exist before the
  // scheduled one is due, so "not listed yet" is seen on real pages, not on a 404.
  await page.getByLabel('Title').fill(FIRST.title);
  await page.getByLabel(/^Body/).fill(FIRST.body);
  await page.getByLabel(/^Tags/).fill(FIRST.tags);
  await navigate(tab, () => page.getByRole('button', { name: 'Save' }).click());
  await landed(tab, 'the writer\'s first post', { path: (u) => u.pathname.startsWith('/posts/') });
  const firstSlug = new URL(page.url()).pathname.split('/')[2];
  check(await flash(page) === 'Published.', 'the first post is published', await flash(page));
  check(JSON.stringify(await tagLinks(page.locator('article.post'))) === JSON.stringify([{ name: 'Testing', href: '/tags/testing' }]),
    'the post shows its tag, linked to /tags/testing', JSON.stringify(await tagLinks(page.locator('article.post'))));
  const byline = page.locator('.meta a[rel=author]').first();
  const handle = ((await byline.getAttribute('href')) ?? '').replace(/^\/authors\//, '');
  gate(/^[a-z0-9-]+$/.test(handle) && await byline.innerText() === writer.name,
    `the byline links the author to their page, /authors/${handle}`, await page.locator('.meta').first().innerHTML());

  // -------------------------------------------------------------- preview, no JavaScript
  console.log('\n# writer: the Preview button without JavaScript');
  const nojs = await newTab('writer without JavaScript', { javaScript: false });
  const np = nojs.page;
  await navigate(nojs, () => np.goto(q('/login')));
  await landed(nojs, 'login page, no JavaScript', { path: '/login' });
  await np.getByLabel('Email').fill(writer.email);
  await np.getByLabel('Password').fill(writer.password);
  await navigate(nojs, () => np.getByRole('button', { name: 'Log in' }).click());
  await landed(nojs, 'dashboard, no JavaScript', { path: '/dashboard' });
  check(await np.locator('#preview').isHidden(), 'without JavaScript no empty preview pane is shown before asking');
  const laterValue = localInput(Date.now() + 86_400_000).replace(/T\d\d:\d\d$/, 'T09:00');
  await np.getByLabel('Title').fill(SCHEDULED.title);
  await np.getByLabel(/^Body/).fill(SCHEDULED.body);
  await np.getByLabel(/^Tags/).fill(SCHEDULED.tags);
  await np.getByLabel(/^Publish at/).fill(laterValue);
  await navigate(nojs, () => np.getByRole('button', { name: 'Preview' }).click());
  await landed(nojs, 'the preview without JavaScript', { path: '/posts' });
  const pane = np.locator('#preview');
  check(await pane.isVisible() && await pane.getByRole('heading', { name: 'Preview' }).count() === 1,
    'the form comes back with a Preview section', await np.locator('main').innerText());
  const prose = np.locator('#preview-body');
  check((await prose.locator('p').first().innerText()) === SCHEDULED.body.split('\n')[0],
    'the preview shows the body rendered as a paragraph', await prose.innerHTML());
  let hl = await highlighting(prose);
  check(hl.spans > 0 && hl.onlyHl && /\bhl-/.test(hl.keywordClass ?? '') && hl.text.includes('fn shrink(n: u32) -> Option<u32>'),
    `the preview's rust code is highlighted with hl- classes only (${hl.classes.slice(0, 4).join(' ')} ...)`, JSON.stringify(hl));
  check(hl.keywordColour && hl.keywordColour !== hl.codeColour, `the keyword "fn" is coloured (${hl.keywordColour}, the code ${hl.codeColour})`, JSON.stringify(hl));
  const kept = {
    title: await np.getByLabel('Title').inputValue(),
    body: await np.getByLabel(/^Body/).inputValue(),
    tags: await np.getByLabel(/^Tags/).inputValue(),
    publishAt: await np.getByLabel(/^Publish at/).inputValue(),
    publish: await np.getByLabel(/^Publish \(/).isChecked(),
  };
  check(kept.title === SCHEDULED.title && kept.body === SCHEDULED.body && kept.tags === SCHEDULED.tags && kept.publishAt === laterValue && kept.publish,
    'after Preview the title, body, tags, publish time and Publish box are as typed', JSON.stringify(kept));
  check(await np.locator('.posts-table tbody tr').count() === 1, 'Preview saved nothing: the dashboard still lists one post',
    await np.locator('.posts-table').innerText().catch(() => ''));
  await shoot(nojs, 'preview-no-js');
  await noteMisses(nojs);
  await nojs.context.close();

  // -------------------------------------------------------------- live preview
  console.log('\n# writer: the live preview with JavaScript');
  await navigate(tab, () => page.getByRole('link', { name: 'Dashboard' }).click());
  await landed(tab, 'dashboard, to write the second post', { path: '/dashboard' });
  check(await page.locator('#preview').isVisible() && (await page.locator('#preview-body').innerHTML()).trim() === '',
    'with JavaScript the form shows an empty preview pane');
  const zoneHint = await page.locator('label[for=publish_at]').innerText();
  check(zoneHint.includes(SITE_TZ), `the publish time is asked in the site's zone ("${zoneHint}")`, zoneHint);
  await page.getByLabel('Title').fill(SCHEDULED.title);
  await page.getByLabel(/^Tags/).fill(SCHEDULED.tags);
  const documentsBefore = tab.documents.length;
  const previews = [];
  page.on('request', (r) => { if (r.method() === 'POST' && pathOf(r.url()) === '/preview') previews.push(r); });
  const firstAnswer = page.waitForResponse((r) => r.request().method() === 'POST' && pathOf(r.url()) === '/preview');
  await page.getByLabel(/^Body/).fill(SCHEDULED.body);
  const answer = await firstAnswer;
  check(answer.status() === 200, `typing the body sends it to POST /preview (${answer.status()})`);
  await page.locator('#preview-body pre code span').first().waitFor();
  const live = page.locator('#preview-body');
  hl = await highlighting(live);
  check(hl.spans > 0 && hl.onlyHl && hl.text.includes('fn shrink(n: u32) -> Option<u32>') && hl.keywordColour !== hl.codeColour,
    'the pane shows the code highlighted (hl- classes, the keyword coloured)', JSON.stringify(hl));
  // Keep typing, key by key: the pane follows, a request a pause, not one a key.
  await page.getByLabel(/^Body/).press('Control+End');
  const sentBefore = previews.length;
  await page.getByLabel(/^Body/).pressSequentially(`\n${SCHEDULED.more}`, { delay: 15 });
  await live.getByText(SCHEDULED.more).waitFor({ timeout: 5000 }).catch(() => {});
  const sentTyping = previews.length - sentBefore;
  check(await live.getByText(SCHEDULED.more).count() === 1, 'the pane shows the sentence as it is typed', await live.innerHTML());
  check(sentTyping >= 1 && sentTyping < SCHEDULED.more.length, `typing ${SCHEDULED.more.length + 1} keys sent ${sentTyping} preview request(s)`);
  check(tab.documents.length === documentsBefore && pathOf(page.url()) === '/dashboard', 'the live preview did not reload the page');
  await page.waitForTimeout(50);
  await page.evaluate(() => 0);
  const liveErrors = takeErrors(tab);
  check(liveErrors.length === 0, 'the live preview: no console error, no CSP violation', liveErrors.map((e) => `${e.kind}: ${e.text}`).join('\n'));
  await shoot(tab, 'preview');

  // -------------------------------------------------------------- schedule
  console.log('\n# writer: schedule it');
  // The next whole minute at least SCHEDULE_LEAD_MS away, as the site's clocks show it
  // (whole minutes in Kathmandu are whole minutes in UTC).
  const at = Math.ceil((Date.now() + SCHEDULE_LEAD_MS) / 60_000) * 60_000;
  await page.getByLabel(/^Publish at/).fill(localInput(at));
  check(await page.getByLabel(/^Publish \(/).isChecked(), 'Publish is ticked');
  await navigate(tab, () => page.getByRole('button', { name: 'Save' }).click());
  await landed(tab, 'the scheduled post, seen by its author', { path: (u) => u.pathname.startsWith('/posts/') });
  const slug = new URL(page.url()).pathname.split('/')[2];
  const shown = localShown(at);
  check((await flash(page)).startsWith(`Scheduled for ${shown}`), `saving says "Scheduled for ${shown} ..." in ${SITE_TZ} time`, await flash(page));
  check((await page.locator('.meta .badge').innerText().catch(() => '')).startsWith(`Scheduled for ${shown}`), 'its author sees it marked as scheduled', await page.locator('.meta').first().innerText());
  hl = await highlighting(page.locator('.prose'));
  check(hl.spans > 0 && hl.onlyHl && hl.keywordColour !== hl.codeColour, 'the saved post has its code highlighted like the preview', JSON.stringify(hl));
  const tagsShown = await tagLinks(page.locator('article.post'));
  check(JSON.stringify(tagsShown.map((t) => t.href)) === JSON.stringify(['/tags/rust', '/tags/testing']) && tagsShown[0].name === 'Rust',
    '"  Rust,  testing " became the tags Rust and (the existing) testing', JSON.stringify(tagsShown));
  scheduled = { at, slug, handle, firstSlug };
  await navigate(tab, () => page.getByRole('link', { name: 'Dashboard' }).click());
  await landed(tab, 'dashboard with the scheduled post', { path: '/dashboard' });
  const row = page.locator('.posts-table tbody tr').filter({ hasText: SCHEDULED.title });
  check(await row.count() === 1 && (await row.innerText()).includes(`Scheduled for ${shown}`), 'the dashboard lists it as scheduled, with its time', await page.locator('.posts-table').innerText());
  await noteMisses(tab);
  await tab.context.close();

  // -------------------------------------------------------------- nowhere yet
  console.log('\n# reader: before it is due the post is nowhere public');
  const visitor = await newTab('reader, before it is due');
  const vp = visitor.page;
  await navigate(visitor, () => vp.goto(q('/')));
  await landed(visitor, 'home before it is due', { path: '/' });
  let titles = await listedTitles(vp);
  check(titles.includes(FIRST.title) && !titles.includes(SCHEDULED.title), 'home lists the first post, not the scheduled one', JSON.stringify(titles));
  await navigate(visitor, () => vp.goto(q(`/posts/${slug}`)));
  await landed(visitor, 'the scheduled post\'s address', { status: 404, path: `/posts/${slug}` });
  check(/not found/i.test(await vp.locator('h1').innerText()) && !(await vp.locator('main').innerText()).includes(SCHEDULED.word),
    'its address is the 404 page, with nothing of the post', await vp.locator('main').innerText());
  await navigate(visitor, () => vp.goto(q('/tags/rust')));
  await landed(visitor, '/tags/rust before it is due', { status: 404, path: '/tags/rust' });
  await navigate(visitor, () => vp.goto(q('/tags/testing')));
  await landed(visitor, '/tags/testing before it is due', { path: '/tags/testing' });
  titles = await listedTitles(vp);
  check(JSON.stringify(titles) === JSON.stringify([FIRST.title]), 'the tag page lists only the first post', JSON.stringify(titles));
  await navigate(visitor, () => vp.goto(q(`/authors/${handle}`)));
  await landed(visitor, 'the author page before it is due', { path: `/authors/${handle}` });
  titles = await listedTitles(vp);
  check(JSON.stringify(titles) === JSON.stringify([FIRST.title]), 'the author page lists only the first post', JSON.stringify(titles));
  await vp.locator('#site-search-q').fill(SCHEDULED.word);
  await navigate(visitor, () => vp.locator('#site-search-q').press('Enter'));
  await landed(visitor, 'search before it is due', { path: `/search?q=${SCHEDULED.word}` });
  const none = await vp.locator('#search-message').innerText().catch(() => '');
  check(none === `No results for “${SCHEDULED.word}”.` && await vp.locator('.search-results li').count() === 0,
    `searching "${SCHEDULED.word}" says there are no results`, await vp.locator('main').innerText());
  const feeds = {};
  for (const f of ['/feed.xml', '/tags/testing/feed.xml', `/authors/${handle}/feed.xml`]) {
    const r = await vp.request.get(q(f));
    feeds[f] = { status: r.status(), has: (await r.text()).includes(SCHEDULED.title) };
  }
  check(Object.values(feeds).every((f) => f.status === 200 && !f.has), 'no feed (site, tag, author) carries it', JSON.stringify(feeds));
  const left = at - Date.now();
  gate(left > 0, `all that was seen before it was due (${Math.round(left / 1000)}s to spare)`, `${-left} ms too late: the checks took longer than SCHEDULE_LEAD_MS`);
  await noteMisses(visitor);
  await visitor.context.close();
});

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

// ---------------------------------------------------------------- password reset

const forgetful = {
  name: 'Katherine Johnson',
  email: `katherine-${stamp}@example.org`,
  password: 'orbital trajectory slide rule 1962',
  next: 'harbour kestrel window quartz 71',
};
// 16 characters, so the browser's minlength lets it through: quire judges it.
const WEAK_PASSWORD = 'passwordpassword';
const RESET_LINK = /https?:\/\/\S+\/password\/reset\/[A-Za-z0-9_-]+/;

/** The text of the page's main content, the email typed replaced by "EMAIL". */
async function mainText(page, email) {
  const text = (await page.locator('main').innerText()).replace(/\s+/g, ' ').trim();
  return email ? text.split(email).join('EMAIL') : text;
}

/** On /password/forgot: types `email`, sends it, and checks the answer page. */
async function askForLink(tab, email, what) {
  const { page } = tab;
  await page.getByLabel('Email').fill(email);
  const began = Date.now();
  await navigate(tab, () => page.getByRole('button', { name: 'Send me a reset link' }).click());
  const took = Date.now() - began;
  await landed(tab, what, { path: '/password/forgot' });
  console.log(`        answered in ${took} ms`);
  return { text: await mainText(page, email), status: await page.locator('.flash').first().getAttribute('role') };
}

await scenario('password reset: forgot page, the mailed link, a new password', async () => {
  // Logged in on one device, the person then forgets the password on another.
  const laptop = await newTab('reset: a session from before');
  const lp = laptop.page;
  await navigate(laptop, () => lp.goto(q('/signup')));
  await landed(laptop, 'signup page (reset)', { path: '/signup' });
  await lp.getByLabel('Email').fill(forgetful.email);
  await lp.getByLabel('Name').fill(forgetful.name);
  await lp.getByLabel('Password').fill(forgetful.password);
  await navigate(laptop, () => lp.getByRole('button', { name: 'Sign up' }).click());
  await landed(laptop, 'the dashboard on the first device', { path: '/dashboard' });

  const tab = await newTab('reset');
  const { page } = tab;
  await navigate(tab, () => page.goto(q('/login')));
  await landed(tab, 'login page (reset)', { path: '/login' });
  await navigate(tab, () => page.getByRole('link', { name: 'Forgot your password?' }).click());
  await landed(tab, 'the forgot page', { path: '/password/forgot' });
  check(await page.locator('h1').innerText() === 'Forgot your password?' && await page.getByRole('button', { name: 'Send me a reset link' }).count() === 1,
    '"Forgot your password?" leads to a form asking for the email', await mainText(page));
  check(await page.getByLabel('Email').getAttribute('type') === 'email', 'the forgot form\'s field is an email field');
  await shoot(tab, 'password-forgot');

  const known = await askForLink(tab, forgetful.email, 'the answer for an account\'s email');
  check(/If an account on this site uses EMAIL, we sent a link to that address\./.test(known.text) && known.status === 'status',
    'the answer says a link was sent if an account uses that email (a status message)', known.text);
  check(await page.locator('main').getByText(forgetful.email).count() === 1, 'the answer names the email typed');
  await shoot(tab, 'password-forgot-sent');

  // A stranger asks for an address nobody has: the very same page.
  const unknown = `nobody-${stamp}@example.org`;
  await navigate(tab, () => page.getByRole('link', { name: 'Ask again' }).click());
  await landed(tab, 'the forgot page, again', { path: '/password/forgot' });
  const stranger = await askForLink(tab, unknown, 'the answer for an unknown email');
  check(stranger.text === known.text && stranger.status === known.status,
    'an unknown email gets word for word the same answer (the email aside)', `known:   ${known.text}\nunknown: ${stranger.text}`);

  // The mail, as the SMTP server received it.
  const mail = await SMTP.waitFor((m) => m.rcpt_to.includes(forgetful.email) && /^Reset your password\b/.test(m.subject));
  gate(mail !== null, `a mail "Reset your password" reached ${forgetful.email}`, JSON.stringify(SMTP.mails().map((m) => [m.rcpt_to, m.subject])));
  const link = mail.text.match(RESET_LINK)?.[0] ?? '';
  gate(link.startsWith(`${LOCAL}/password/reset/`), `its text holds an absolute link on site.url (${LOCAL}/password/reset/...)`, mail.text);
  const hrefs = [...mail.html.matchAll(/<a\b[^>]*\bhref="([^"]*)"/g)].map((m) => unescapeHtml(m[1]));
  check(hrefs.length === 1 && hrefs[0] === link, 'its HTML part links the same address, and nothing else', JSON.stringify(hrefs));
  check(/within 30 minutes/.test(mail.text) && /Hello Katherine Johnson/.test(mail.text), 'the mail greets by name and says the link works for 30 minutes', mail.text);

  // The link, opened in the browser.
  const resetPath = new URL(link).pathname;
  await navigate(tab, () => page.goto(link));
  await landed(tab, 'the reset form', { path: resetPath });
  check(await page.locator('h1').innerText() === 'Choose a new password' && (await mainText(page)).includes(`For the account ${forgetful.email}.`),
    'the link opens "Choose a new password" for the account', await mainText(page));
  const fields = await page.evaluate(() => [...document.querySelectorAll('main form input')]
    .filter((el) => el.type !== 'hidden' && !el.hidden).map((el) => ({ name: el.name, type: el.type, autocomplete: el.autocomplete })));
  check(fields.length > 0 && fields.every((f) => f.type === 'password'),
    'the form\'s only visible field is a password field', JSON.stringify(fields));
  check(fields.some((f) => f.name === 'password' && f.autocomplete === 'new-password'), 'it asks for a new password (autocomplete="new-password")', JSON.stringify(fields));
  await shoot(tab, 'password-reset');

  await page.getByLabel('New password').fill(WEAK_PASSWORD);
  await navigate(tab, () => page.getByRole('button', { name: 'Set the new password' }).click());
  await landed(tab, 'the reset form with a weak password', { status: 422, path: resetPath });
  await expectFieldError(page, 'password', /too common or easy to guess/, 'a weak new password');
  check(await flash(page) === 'Please choose another password.', 'a weak new password: the form asks for another one', await flash(page));
  check(await page.getByLabel('New password').inputValue() === '', 'a weak new password: it is not echoed back');
  await shoot(tab, 'password-reset-error');

  await page.getByLabel('New password').fill(forgetful.next);
  await navigate(tab, () => page.getByRole('button', { name: 'Set the new password' }).click());
  await landed(tab, 'after setting the new password', { path: '/dashboard' });
  check((await flash(page)).startsWith('Your password was changed'), 'the new password is set: "Your password was changed ..."', await flash(page));
  check(await nav(page) === 'Dashboard | Images | Account | Log out' && /Logged in as Katherine Johnson/.test(await mainText(page)),
    'and the person is logged in', `${await nav(page)} / ${await mainText(page)}`);

  // The session on the other device has ended.
  await navigate(laptop, () => lp.reload());
  await landed(laptop, 'the first device after the reset', { path: '/login?next=%2Fdashboard' });
  check(await nav(lp) === 'Log in | Sign up', 'the first device is logged out', await nav(lp));
  await noteMisses(laptop);
  await laptop.context.close();

  await navigate(tab, () => page.getByRole('button', { name: 'Log out' }).click());
  await landed(tab, 'logged out after the reset', { path: '/' });
  await navigate(tab, () => page.getByRole('link', { name: 'Log in' }).click());
  await landed(tab, 'login page after the reset', { path: '/login' });
  await page.getByLabel('Email').fill(forgetful.email);
  await page.getByLabel('Password').fill(forgetful.password);
  await navigate(tab, () => page.getByRole('button', { name: 'Log in' }).click());
  await landed(tab, 'login with the old password', { status: 401, path: '/login' });
  check(await page.locator('.flash-error').innerText() === 'Incorrect email or password.', 'the old password no longer works', await mainText(page));
  await page.getByLabel('Password').fill(forgetful.next);
  await navigate(tab, () => page.getByRole('button', { name: 'Log in' }).click());
  await landed(tab, 'login with the new password', { path: '/dashboard' });
  check(await flash(page) === `Welcome back, ${forgetful.name}.`, 'the new password logs in', await flash(page));

  await navigate(tab, () => page.goto(link));
  await landed(tab, 'the used link', { status: 404, path: resetPath });
  check(/This reset link does not work: it was already used/.test(await mainText(page)) && await page.getByLabel('New password').count() === 0,
    'the link, opened again, says it was already used, with no form', await mainText(page));
  check(await page.getByRole('link', { name: 'Ask for a new link' }).getAttribute('href') === '/password/forgot', 'and offers to ask for a new link');

  const notice = await SMTP.waitFor((m) => m.rcpt_to.includes(forgetful.email) && /^Your password\b.* was changed$/.test(m.subject));
  check(notice !== null && /was just changed/.test(notice.text) && notice.text.includes(`${LOCAL}/password/forgot`),
    'a mail "Your password was changed" arrived, with a link to reset it if it was not them', notice?.text ?? JSON.stringify(SMTP.mails().map((m) => [m.rcpt_to, m.subject])));
  const all = SMTP.mails();
  check(all.filter((m) => m.rcpt_to.includes(forgetful.email)).length === 2 && !all.some((m) => m.rcpt_to.includes(unknown)),
    'two mails went to the account\'s address and none to the unknown one', JSON.stringify(all.map((m) => [m.rcpt_to, m.subject])));
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
  check(await nav(page) === 'Dashboard | Images | Account | Log out', 'the nav offers Dashboard, Images, Account and Log out', await nav(page));

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

// ---------------------------------------------------------------- a second factor

/** The RFC 6238 code of a base32 secret for time step `step`: HMAC-SHA1, 6 digits, as an app makes it. */
function totpCode(base32, step) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of base32.replace(/[\s=]/g, '').toUpperCase()) {
    const v = alphabet.indexOf(ch);
    if (v < 0) throw new Error(`not base32: ${base32}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', key).update(counter).digest();
  const at = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(at) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}
/** The 30-second time step an authenticator app is at. */
const totpStep = (ms = Date.now()) => Math.floor(ms / 30_000);

const guarded = {
  name: 'Grace Hopper',
  email: `grace-${stamp}@example.org`,
  password: 'compiler nanosecond moth 1947',
};

await scenario('author: an authenticator app as a second factor', async () => {
  // The RFC's own example first: a test of the test's authenticator.
  gate(totpCode('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', 1) === '287082', 'the test\'s RFC 6238 code generator gives the RFC\'s test vector');
  const tab = await newTab('author with an authenticator app');
  const { page } = tab;
  await navigate(tab, () => page.goto(q('/signup')));
  await landed(tab, 'signup page (second factor)', { path: '/signup' });
  await page.getByLabel('Email').fill(guarded.email);
  await page.getByLabel('Name').fill(guarded.name);
  await page.getByLabel('Password').fill(guarded.password);
  await navigate(tab, () => page.getByRole('button', { name: 'Sign up' }).click());
  await landed(tab, 'the dashboard after signup (second factor)', { path: '/dashboard' });

  await navigate(tab, () => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Account' }).click());
  await landed(tab, 'the account page', { path: '/account' });
  await navigate(tab, () => page.getByRole('link', { name: 'Second factors and recovery codes' }).click());
  await landed(tab, 'the security page, to set up the app', { path: '/account/security' });
  const secret = (await page.locator('#totp-secret').innerText().catch(() => '')).trim();
  gate(/^[A-Z2-7]{26,}=*$/.test(secret), `the page shows the secret as base32 text (${secret.length} characters), right after signing up`, await mainText(page));
  const uri = (await page.locator('#totp-uri').innerText().catch(() => '')).trim();
  check(uri.startsWith('otpauth://totp/') && new URL(uri).searchParams.get('secret') === secret, 'and its otpauth:// setup link, with the same secret', uri);
  const qr = await page.evaluate(() => {
    const el = document.querySelector('main img.qr') ?? document.querySelector('main svg');
    if (!el) return null;
    const r = el.getBoundingClientRect();
    return { tag: el.tagName.toLowerCase(), width: r.width, height: r.height, natural: el.naturalWidth ?? null, complete: el.complete ?? true, alt: el.getAttribute('alt') ?? '' };
  });
  check(qr && qr.width >= 100 && qr.height >= 100 && (qr.tag !== 'img' || (qr.complete && qr.natural > 0 && qr.alt !== '')),
    `the QR code is drawn: an <${qr?.tag}> of ${qr?.width} x ${qr?.height} px${qr?.tag === 'img' ? `, loaded (${qr.natural} px), alt "${qr.alt}"` : ''}`, JSON.stringify(qr));
  await shoot(tab, 'security-setup');

  // The app's code now turns it on.
  const enrolStep = totpStep();
  await page.getByLabel('Code from the app').fill(totpCode(secret, enrolStep));
  await navigate(tab, () => page.getByRole('button', { name: 'Turn on' }).click());
  await landed(tab, 'the security page, app turned on', { path: '/account/security' });
  check((await flash(page)).startsWith('Your authenticator app is set up.'), 'the code turns the app on: "Your authenticator app is set up. ..."', await flash(page));
  const codes = (await page.locator('#recovery-codes li').allInnerTexts()).map((c) => c.trim());
  check(codes.length === 10 && new Set(codes).size === 10 && codes.every((c) => /^[A-Za-z0-9-]{8,}$/.test(c)),
    `ten different recovery codes are listed in #recovery-codes (${codes[0] ?? 'none'}, ...)`, JSON.stringify(codes));
  check(await page.locator('.badge', { hasText: 'On' }).count() === 1, 'the page says the app is On');
  await shoot(tab, 'security-codes');
  await navigate(tab, () => page.reload());
  await landed(tab, 'the security page, reloaded', { path: '/account/security' });
  check(await page.locator('#recovery-codes').count() === 0 && (await page.locator('#codes-left').innerText()) === '10 of 10 recovery codes left.',
    'reloaded, the codes are shown no more: "10 of 10 recovery codes left."', await mainText(page));

  // A login now takes the password, then a code.
  await navigate(tab, () => page.getByRole('button', { name: 'Log out' }).click());
  await landed(tab, 'logged out (second factor)', { path: '/' });
  await navigate(tab, () => page.getByRole('link', { name: 'Log in' }).click());
  await landed(tab, 'login page (second factor)', { path: '/login' });
  await page.getByLabel('Email').fill(guarded.email);
  await page.getByLabel('Password').fill(guarded.password);
  await navigate(tab, () => page.getByRole('button', { name: 'Log in' }).click());
  await landed(tab, 'the code step', { path: '/login/verify' });
  check(await page.locator('h1').innerText() === 'Enter your code' && await nav(page) === 'Log in | Sign up',
    'the password leads to "Enter your code", not logged in yet', `${await page.locator('h1').innerText()} / ${await nav(page)}`);
  await shoot(tab, 'login-verify');
  await navigate(tab, () => page.goto(q('/dashboard')));
  await landed(tab, 'the dashboard before the code', { path: (u) => u.pathname !== '/dashboard' });
  check(!/Logged in as/.test(await mainText(page)) && (await tab.context.cookies()).every((c) => c.name !== 'quire_session'),
    `with only the password, /dashboard is not reachable (it went to ${pathOf(page.url())}) and there is no session cookie`, await mainText(page));
  await navigate(tab, () => page.goto(q('/login/verify')));
  await landed(tab, 'the code step, again', { path: '/login/verify' });

  // The code that turned the app on has been used: refused, by design.
  await page.getByLabel('Code from your authenticator app').fill(totpCode(secret, enrolStep));
  await navigate(tab, () => page.getByRole('button', { name: 'Verify' }).click());
  await landed(tab, 'the code step with a used code', { status: 401, path: '/login/verify' });
  const refused = await page.locator('#verify-error').innerText().catch(() => '');
  check(/not valid/.test(refused) && /Codes work once/.test(refused), `the used code is refused: "${refused}"`, await mainText(page));
  check(await page.getByLabel('Code from your authenticator app').getAttribute('aria-invalid') === 'true', 'the code field is marked invalid');
  await shoot(tab, 'login-verify-error');

  // The app's next code: once the next 30-second step has begun.
  const wait = (enrolStep + 1) * 30_000 + 500 - Date.now();
  if (wait > 0) {
    console.log(`        waiting ${Math.round(wait / 1000)}s for the app's next code`);
    await sleep(wait);
  }
  await page.getByLabel('Code from your authenticator app').fill(totpCode(secret, totpStep()));
  await navigate(tab, () => page.getByRole('button', { name: 'Verify' }).click());
  await landed(tab, 'after the code', { path: '/dashboard' });
  check(await flash(page) === `Welcome back, ${guarded.name}.` && /Logged in as Grace Hopper/.test(await mainText(page)),
    'the next code logs in: "Welcome back"', `${await flash(page)} / ${await mainText(page)}`);
  await navigate(tab, () => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Account' }).click());
  await landed(tab, 'the account page after the code', { path: '/account' });
  const sessions = await page.locator('ul.sessions > li').allInnerTexts();
  const current = sessions.find((s) => /This browser/.test(s)) ?? '';
  check(/logged in with password and authenticator app/.test(current), '/account shows this session was made with "password and authenticator app"', JSON.stringify(sessions));
  check(sessions.length === 1, 'and it is the only session (setting up the app ended the others, the logout its own)', JSON.stringify(sessions));
  await navigate(tab, () => page.getByRole('navigation', { name: 'Main' }).getByRole('button', { name: 'Log out' }).click());
  await landed(tab, 'logged out after the code', { path: '/' });
  await noteMisses(tab);
  await tab.context.close();
});

const keyholder = {
  name: 'Radia Perlman',
  email: `radia-${stamp}@example.org`,
  password: 'spanning tree algorhyme 1985',
};

await scenario('author: a passkey registered, then a login with it alone', async () => {
  const tab = await newTab('author with a passkey');
  const { page } = tab;
  // Chromium's virtual authenticator: a platform authenticator that keeps discoverable
  // credentials and verifies its user (as a laptop's fingerprint reader would).
  const cdp = await tab.context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  const p = (path) => `${PASSKEYS}${path}`;
  await navigate(tab, () => page.goto(p('/signup')));
  await landed(tab, 'signup page (passkeys)', { path: '/signup' });
  await page.getByLabel('Email').fill(keyholder.email);
  await page.getByLabel('Name').fill(keyholder.name);
  await page.getByLabel('Password').fill(keyholder.password);
  await navigate(tab, () => page.getByRole('button', { name: 'Sign up' }).click());
  await landed(tab, 'the dashboard after signup (passkeys)', { path: '/dashboard' });

  await navigate(tab, () => page.goto(p('/account/security')));
  await landed(tab, 'the security page, to add a passkey', { path: '/account/security' });
  const add = page.getByRole('button', { name: 'Add a passkey' });
  gate(await add.isVisible(), 'the script shows the "Add a passkey" button', await mainText(page));
  await page.getByLabel('Name of the new passkey').fill('This laptop');
  await navigate(tab, () => add.click());
  await landed(tab, 'the security page, passkey added', { path: '/account/security' });
  check((await flash(page)).startsWith('Your passkey “This laptop” is added'), 'the passkey is added: "Your passkey “This laptop” is added ..."', await flash(page));
  const listed = await page.locator('#passkeys li').allInnerTexts();
  check(listed.length === 1 && /This laptop/.test(listed[0]) && /last used never/.test(listed[0]),
    'the page lists it by name, "last used never"', JSON.stringify(listed));
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  check(credentials.length === 1 && credentials[0].isResidentCredential && credentials[0].rpId === 'localhost',
    'the authenticator holds one discoverable credential for the relying party "localhost"', JSON.stringify(credentials.map((c) => ({ rpId: c.rpId, resident: c.isResidentCredential }))));
  await shoot(tab, 'security-passkey');

  await navigate(tab, () => page.getByRole('navigation', { name: 'Main' }).getByRole('button', { name: 'Log out' }).click());
  await landed(tab, 'logged out (passkeys)', { path: '/' });
  await navigate(tab, () => page.goto(p('/login')));
  await landed(tab, 'login page (passkeys)', { path: '/login' });
  const login = page.getByRole('button', { name: 'Log in with a passkey' });
  gate(await login.isVisible(), 'the login page shows "Log in with a passkey"', await mainText(page));
  await shoot(tab, 'login-passkey');
  // No email typed: the authenticator offers the site's discoverable credential.
  await navigate(tab, () => login.click());
  await landed(tab, 'after the passkey', { path: '/dashboard' });
  check(await flash(page) === `Welcome back, ${keyholder.name}.`, 'the passkey alone logs in: "Welcome back"', `${await flash(page)} / ${await mainText(page)}`);
  await navigate(tab, () => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Account' }).click());
  await landed(tab, 'the account page after the passkey', { path: '/account' });
  const sessions = await page.locator('ul.sessions > li').allInnerTexts();
  const current = sessions.find((s) => /This browser/.test(s)) ?? '';
  check(/logged in with passkey/.test(current), '/account shows this session was made with "passkey"', JSON.stringify(sessions));
  await navigate(tab, () => page.getByRole('navigation', { name: 'Main' }).getByRole('button', { name: 'Log out' }).click());
  await landed(tab, 'logged out after the passkey', { path: '/' });
  await noteMisses(tab);
  await tab.context.close();
});

// ---------------------------------------------------------------- an image

/** A valid PNG, `width` x `height`, in horizontal bands of the solid `colours` ([r, g, b]). */
function pngBands(width, height, colours) {
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = table[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bits per sample
  header[9] = 2; // RGB
  const row = 1 + width * 3; // a filter byte (0, none), then the pixels
  const raw = Buffer.alloc(row * height);
  for (let y = 0; y < height; y++) {
    const [r, g, b] = colours[Math.floor((y * colours.length) / height)];
    for (let x = 0; x < width; x++) raw.set([r, g, b], y * row + 1 + x * 3);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0)),
  ]);
}

const illustrator = {
  name: 'Hedy Lamarr',
  email: `hedy-${stamp}@example.org`,
  password: 'frequency hopping piano rolls 1942',
};
const PICTURE = {
  title: 'The punched cards, in three colours',
  body: 'A card for each operation, another for each variable.',
  file: 'punched-cards.png',
};
const MEDIA_MD = /!\[[^\]]*\]\(\/media\/\d+\/[^)\s]+\)/;
let pictureAt = null; // when the post with the image was published (ms), for the home page's order

await scenario('writer: an image uploaded, put in a post, shown on the page and on a phone', async () => {
  const dir = join(process.env.TMPDIR, 'uploads');
  mkdirSync(dir, { recursive: true });
  const png = join(dir, PICTURE.file);
  writeFileSync(png, pngBands(1200, 800, [[178, 34, 34], [240, 200, 60], [30, 80, 160]]));
  const svg = join(dir, 'drawing.svg');
  writeFileSync(svg, '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><script>alert(1)</script><rect width="40" height="40"/></svg>\n');
  const fake = join(dir, 'holiday.png');
  writeFileSync(fake, '<!doctype html><title>hi</title><script>alert(document.cookie)</script>\n');

  const tab = await newTab('writer with an image');
  const { page } = tab;
  await navigate(tab, () => page.goto(q('/signup')));
  await landed(tab, 'signup page (images)', { path: '/signup' });
  await page.getByLabel('Email').fill(illustrator.email);
  await page.getByLabel('Name').fill(illustrator.name);
  await page.getByLabel('Password').fill(illustrator.password);
  await navigate(tab, () => page.getByRole('button', { name: 'Sign up' }).click());
  await landed(tab, 'the dashboard (images)', { path: '/dashboard' });
  await page.getByLabel('Title').fill(PICTURE.title);
  await page.getByLabel(/^Body/).fill(PICTURE.body);

  // An SVG first: refused, on the same form, with what was typed kept.
  await page.getByLabel(/^Add an image/).setInputFiles(svg);
  await navigate(tab, () => page.getByRole('button', { name: 'Upload image' }).click());
  await landed(tab, 'the post form after an SVG', { status: 415, path: (u) => u.pathname === '/media' || u.pathname === '/dashboard' });
  await expectFieldError(page, 'file', /not a JPEG, PNG, GIF or WebP image/, 'an SVG');
  check(await page.getByLabel('Title').inputValue() === PICTURE.title && await page.getByLabel(/^Body/).inputValue() === PICTURE.body,
    'an SVG: the title and body typed are kept', `${await page.getByLabel('Title').inputValue()} / ${await page.getByLabel(/^Body/).inputValue()}`);

  // The PNG: the form comes back with its Markdown at the end of the body.
  await page.getByLabel(/^Add an image/).setInputFiles(png);
  await navigate(tab, () => page.getByRole('button', { name: 'Upload image' }).click());
  await landed(tab, 'the post form after the upload', { path: (u) => u.pathname === '/media' || u.pathname === '/dashboard' });
  const body = await page.getByLabel(/^Body/).inputValue();
  const markdown = body.match(MEDIA_MD)?.[0] ?? '';
  check(body.startsWith(PICTURE.body) && markdown !== '' && body.trimEnd().endsWith(markdown),
    `the body comes back with the image's Markdown at the end (${markdown})`, body);
  check(await page.getByLabel('Title').inputValue() === PICTURE.title, 'the title typed is kept', await page.getByLabel('Title').inputValue());
  check(/not saved yet/.test(await flash(page)), 'the page says the post is not saved yet', await flash(page));
  if (!(await page.getByLabel(/^Publish \(/).isChecked())) await page.getByLabel(/^Publish \(/).check();
  const saving = Date.now();
  await navigate(tab, () => page.getByRole('button', { name: 'Save' }).click());
  pictureAt = (saving + Date.now()) / 2;
  await landed(tab, 'the post with the image', { path: (u) => u.pathname.startsWith('/posts/') });
  const slug = new URL(page.url()).pathname.split('/')[2];
  check(await flash(page) === 'Published.', 'saving says "Published."', await flash(page));

  const img = page.locator('.prose img');
  gate(await img.count() === 1, 'the post shows one image', await page.locator('.prose').innerHTML());
  const loaded = () => page.waitForFunction(() => {
    const i = document.querySelector('.prose img');
    return i && i.complete && i.naturalWidth > 0;
  }, null, { timeout: 10_000 }).catch(() => {});
  await img.scrollIntoViewIfNeeded();
  await loaded();
  const seen = () => img.evaluate((i) => {
    const r = i.getBoundingClientRect();
    return {
      src: i.getAttribute('src'), srcset: i.getAttribute('srcset') ?? '', sizes: i.getAttribute('sizes') ?? '',
      width: i.getAttribute('width'), height: i.getAttribute('height'), alt: i.getAttribute('alt'),
      natural: i.naturalWidth, current: i.currentSrc, shown: Math.round(r.width), right: Math.round(r.right),
      window: window.innerWidth, scroll: document.scrollingElement.scrollWidth,
    };
  });
  let info = await seen();
  const { srcset } = info;
  const widths = [...info.srcset.matchAll(/\/media\/\d+\/\S+ (\d+)w/g)].map((m) => Number(m[1]));
  check(info.src && markdown.includes(info.src), `the image's src is the uploaded file (${info.src})`, JSON.stringify(info));
  check(info.width === '1200' && info.height === '800', 'it carries width="1200" and height="800" (no layout shift)', JSON.stringify(info));
  check(widths.includes(480) && widths.includes(960) && widths.length >= 2 && info.sizes !== '',
    `its srcset offers ${widths.map((w) => `${w}w`).join(', ')}, with sizes`, JSON.stringify(info));
  check(info.natural > 0, `it loaded (${info.natural} px, shown ${info.shown} px wide)`, JSON.stringify(info));
  await page.waitForTimeout(50);
  await page.evaluate(() => 0);
  let errors = takeErrors(tab);
  check(errors.length === 0, 'the image loaded with no console error, no CSP violation', errors.map((e) => `${e.kind}: ${e.text}`).join('\n'));
  await shoot(tab, 'post-image');

  // A phone opens the post: it gets a smaller file, and the image fits.
  const phone = await newTab('phone reader', { width: 390, height: 844 });
  const pp = phone.page;
  await navigate(phone, () => pp.goto(q(`/posts/${slug}`)));
  await landed(phone, 'the post on a phone', { path: `/posts/${slug}` });
  const pimg = pp.locator('.prose img');
  await pimg.scrollIntoViewIfNeeded();
  await pp.waitForFunction(() => {
    const i = document.querySelector('.prose img');
    return i && i.complete && i.naturalWidth > 0;
  }, null, { timeout: 10_000 }).catch(() => {});
  info = await pimg.evaluate((i) => {
    const r = i.getBoundingClientRect();
    return {
      natural: i.naturalWidth, current: i.currentSrc, shown: Math.round(r.width), left: Math.round(r.left), right: Math.round(r.right),
      window: window.innerWidth, scroll: document.scrollingElement.scrollWidth,
    };
  });
  // naturalWidth is scaled by the chosen candidate's density: which file came is read from currentSrc.
  const chosen = [...srcset.matchAll(/(\S+) (\d+)w/g)].find((m) => new URL(m[1], q('/')).href === info.current);
  check(info.natural > 0 && chosen && Number(chosen[2]) < 1200,
    `at 390 px the browser loads a smaller file from the srcset (the ${chosen?.[2]}w one) and it loaded`, JSON.stringify({ ...info, srcset }));
  check(info.scroll <= info.window && info.left >= 0 && info.right <= info.window,
    `at 390 px the image fits (${info.shown} px shown, the page ${info.scroll} px wide): no sideways scrolling`, JSON.stringify(info));
  await pp.waitForTimeout(50);
  await pp.evaluate(() => 0);
  errors = takeErrors(phone);
  check(errors.length === 0, 'on the phone: no console error, no CSP violation', errors.map((e) => `${e.kind}: ${e.text}`).join('\n'));
  await noteMisses(phone);
  await phone.context.close();

  // The library lists it with its Markdown.
  await navigate(tab, () => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Images' }).click());
  await landed(tab, 'the image library', { path: '/media' });
  const items = page.locator('.media-list > li');
  check(await items.count() === 1 && (await items.first().innerText()).includes(PICTURE.file), `/media lists one upload, ${PICTURE.file}`, await mainText(page));
  check(await items.first().locator('.media-markdown').inputValue() === markdown, 'with the Markdown that went into the post', await items.first().innerHTML());
  check(/1200 × 800/.test(await items.first().innerText()), 'and its size, 1200 × 800', await items.first().innerText());
  const thumb = await items.first().locator('img').evaluate((i) => ({ natural: i.naturalWidth, complete: i.complete, alt: i.getAttribute('alt') }));
  check(thumb.complete && thumb.natural > 0, `its thumbnail loaded (${thumb.natural} px wide)`, JSON.stringify(thumb));
  await shoot(tab, 'media');

  // HTML named .png: the type is read from the bytes, so it is refused, on the same page.
  await page.getByLabel('Image file').setInputFiles(fake);
  await navigate(tab, () => page.getByRole('button', { name: 'Upload', exact: true }).click());
  await landed(tab, 'the library after an HTML file named .png', { status: 415, path: '/media' });
  await expectFieldError(page, 'file', /not a JPEG, PNG, GIF or WebP image/, 'an HTML file named .png');
  check(await page.locator('.media-list > li').count() === 1, 'nothing was stored: the library still lists one upload', await mainText(page));
  await shoot(tab, 'media-error');
  await noteMisses(tab);
  await tab.context.close();
});

// ---------------------------------------------------------------- the scheduled post, due

await scenario('reader: once due, the scheduled post is on home, search, its tag and its author\'s page', async () => {
  gate(scheduled !== null, 'a post was scheduled earlier in the run');
  const { at, slug, handle, firstSlug } = scheduled;
  // quire runs on this machine: its clock is ours. A second past due, to be sure.
  const wait = at + 1000 - Date.now();
  console.log(`        waiting ${Math.max(0, Math.round(wait / 1000))}s until it is due (${localInput(at)} in ${SITE_TZ})`);
  if (wait > 0) await sleep(wait);
  const tab = await newTab('reader, once it is due');
  const { page } = tab;
  await navigate(tab, () => page.goto(q('/')));
  await landed(tab, 'home once it is due', { path: '/' });
  let titles = await listedTitles(page);
  // Newest first: the post with the image, published while this one waited, may be newer.
  const top = pictureAt === null ? [SCHEDULED.title] : pictureAt > at ? [PICTURE.title, SCHEDULED.title] : [SCHEDULED.title, PICTURE.title];
  check(JSON.stringify(titles.slice(0, top.length)) === JSON.stringify(top) && titles.includes(FIRST.title),
    `home lists it by its publish time (${top.join(', then ')}), with no restart and no job`, JSON.stringify(titles));

  await page.locator('#site-search-q').fill(SCHEDULED.word);
  await navigate(tab, () => page.locator('#site-search-q').press('Enter'));
  await landed(tab, 'search once it is due', { path: `/search?q=${SCHEDULED.word}` });
  const results = page.locator('.search-results > li');
  check(await results.count() === 1 && await results.first().locator('h2').innerText() === SCHEDULED.title,
    `searching "${SCHEDULED.word}" finds it`, await page.locator('main').innerText());
  const marks = await results.first().locator('.snippet mark').allInnerTexts();
  check(marks.length > 0 && marks.every((m) => m.toLowerCase() === SCHEDULED.word), `the snippet highlights "${SCHEDULED.word}"`, JSON.stringify(marks));
  check(await page.locator('#search-q').inputValue() === SCHEDULED.word, 'the search box keeps the words searched');
  await shoot(tab, 'search');

  await navigate(tab, () => results.first().getByRole('link', { name: SCHEDULED.title }).click());
  await landed(tab, 'the post from search', { path: `/posts/${slug}` });
  check(await page.locator('h1').innerText() === SCHEDULED.title && await page.locator('.meta .badge').count() === 0,
    'the post is public, with no "Scheduled" badge', await page.locator('.meta').first().innerText());
  const hl = await highlighting(page.locator('.prose'));
  check(hl.spans > 0 && hl.onlyHl && hl.keywordColour !== hl.codeColour, 'a reader sees its code highlighted', JSON.stringify(hl));
  check(await page.locator('.prose').getByText(SCHEDULED.more).count() === 1, 'the post has the sentence typed last');

  await navigate(tab, () => page.locator('article.post').getByRole('link', { name: 'Rust', exact: true }).click());
  await landed(tab, 'the Rust tag page', { path: '/tags/rust' });
  check(/Rust/.test(await page.locator('h1').innerText()) && JSON.stringify(await listedTitles(page)) === JSON.stringify([SCHEDULED.title]),
    '/tags/rust lists the post', await page.locator('main').innerText());
  const item = page.locator('.post-list > li').first();
  check(/Property tests find a failing input/.test(await item.locator('.excerpt').innerText().catch(() => '')), 'the listing shows its excerpt (the first paragraph)');
  await shoot(tab, 'tag');
  await navigate(tab, () => page.goto(q('/tags/testing')));
  await landed(tab, '/tags/testing once it is due', { path: '/tags/testing' });
  titles = await listedTitles(page);
  check(JSON.stringify(titles) === JSON.stringify([SCHEDULED.title, FIRST.title]), '/tags/testing lists both posts, newest first', JSON.stringify(titles));

  await navigate(tab, () => page.locator('.post-list > li').first().getByRole('link', { name: writer.name }).click());
  await landed(tab, 'the author page', { path: `/authors/${handle}` });
  titles = await listedTitles(page);
  check(await page.locator('h1').innerText() === `Posts by ${writer.name}` && JSON.stringify(titles) === JSON.stringify([SCHEDULED.title, FIRST.title]),
    `/authors/${handle} lists both of ${writer.name}'s posts, newest first`, await page.locator('main').innerText());
  check(await page.locator(`.post-list a[href="/posts/${firstSlug}"]`).count() > 0, 'the author page links the first post too');
  await shoot(tab, 'author');

  const feeds = {};
  for (const f of ['/feed.xml', '/tags/rust/feed.xml', `/authors/${handle}/feed.xml`]) {
    const r = await page.request.get(q(f));
    feeds[f] = { status: r.status(), has: (await r.text()).includes(SCHEDULED.title) };
  }
  check(Object.values(feeds).every((f) => f.status === 200 && f.has), 'the site, tag and author feeds carry it', JSON.stringify(feeds));
  await noteMisses(tab);
  await tab.context.close();
});

console.log(`\nscreenshots: ${SHOTS} (${readdirSync(SHOTS).filter((f) => f.endsWith('.png')).length} files)`);
await end();
