// What quire's two Node harnesses (tests/interop/driver.mjs and tests/e2e/suite.mjs)
// share, so that both count, start, stop and report the same way:
//   - checks: check / gate / scenario, and the closing "N passed, N failed" line;
//   - HTML: unescaping, page text, forms and their CSRF token;
//   - a browser over plain HTTP: a cookie jar keyed by host (ports ignored, as browsers
//     scope cookies) with SameSite enforced, and redirects followed like a browser;
//   - processes: free loopback ports, `quire serve`, the OP (tests/interop/op.mjs) and
//     the mail tests' SMTP server (tests/mail/smtp_server.py) started with logs in a
//     work folder, waited for, and stopped whatever happens;
//   - begin() / end(): the run itself, with a time limit, always ending on the summary line.
// Plain Node (>= 20), no dependencies: each harness installs its own packages.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** tests/interop, where the OP lives. */
export const INTEROP_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'interop');
/** tests/mail, where the SMTP server lives. */
export const MAIL_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'mail');

// ---------------------------------------------------------------- checks

let passed = 0;
let failed = 0;

/** Thrown by `gate`: ends the scenario it is in, which has already been counted. */
export class Abort extends Error {}

/** Thrown when the harness cannot even start (a process, a missing variable). */
export class SetupError extends Error {}

const describe = (detail) => {
  if (detail === undefined || detail === null || detail === '') return '';
  if (typeof detail === 'string') return detail;
  if (detail instanceof Error) return detail.stack ?? String(detail);
  return JSON.stringify(detail, null, 2);
};

/** One check: prints "ok" or "FAILED" with the detail, counts it, returns `ok`. */
export function check(ok, what, detail = '') {
  if (ok) {
    passed += 1;
    console.log(`ok      ${what}`);
  } else {
    failed += 1;
    const d = describe(detail);
    console.log(`FAILED  ${what}${d ? `\n        ${d.replace(/\n/g, '\n        ')}` : ''}`);
  }
  return ok;
}

/** A check the rest of the scenario depends on: failing it ends the scenario. */
export function gate(ok, what, detail) {
  if (!check(ok, what, detail)) throw new Abort(what);
}

/** A named group of checks; an unexpected error in it is one more failure, not the end. */
export async function scenario(name, body) {
  console.log(`\n# ${name}`);
  try {
    await body();
  } catch (e) {
    if (e instanceof Abort) {
      console.log(`        (scenario "${name}" stopped here)`);
    } else {
      check(false, `${name}: no unexpected error`, e?.stack ?? String(e));
    }
  }
}

/** The closing line every harness ends on. */
export const summaryLine = () => `${passed} passed, ${failed} failed`;

// ---------------------------------------------------------------- HTML

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", '#39': "'", '#x27': "'", '#34': '"' };

/** Undoes HTML character references (Tera's autoescape, an Atom feed's escaped content). */
export function unescapeHtml(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e) => {
    const k = e.toLowerCase();
    if (ENTITIES[k]) return ENTITIES[k];
    if (k.startsWith('#x')) return String.fromCodePoint(parseInt(k.slice(2), 16));
    if (k.startsWith('#')) return String.fromCodePoint(parseInt(k.slice(1), 10));
    return m;
  });
}

/** A page's text, tags dropped and spaces collapsed. */
export const textOf = (html) => html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();

export const snippet = (s, n = 600) => (s.length > n ? `${s.slice(0, n)}...` : s);

function attrs(tag) {
  const out = {};
  for (const m of tag.matchAll(/([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)) {
    out[m[1].toLowerCase()] = unescapeHtml(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

/** Every form: its attributes, its inputs, and the submit buttons tied to it. */
export function forms(html) {
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

/** The CSRF token of the first form that has one. */
export function csrfToken(html) {
  const form = forms(html).find((f) => f.inputs.some((i) => i.name === 'csrf_token'));
  return form?.inputs.find((i) => i.name === 'csrf_token').value;
}

/** The named inputs of a form as fields to submit, values as the page set them. */
export const fieldsOf = (form) => Object.fromEntries(form.inputs.filter((i) => i.name).map((i) => [i.name, i.value ?? '']));

// ---------------------------------------------------------------- a browser over HTTP

const siteOf = (url) => `${url.protocol}//${url.hostname}`; // scheme + host: ports do not make sites

/** Cookies as a browser keeps them: by host (not port) and path, with SameSite and expiry. */
export class CookieJar {
  constructor() {
    this.cookies = []; // { name, value, host, path, sameSite, expires }
  }

  find(host, name) {
    return this.cookies.find((c) => c.host === host && c.name === name);
  }

  on(host) {
    return this.cookies.filter((c) => c.host === host);
  }

  /** Keeps what the `Set-Cookie` lines of a response from `url` set (or remove). */
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
      const defaultPath = url.pathname.replace(/\/[^/]*$/, '') || '/';
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
}

const REQUEST_TIMEOUT_MS = 15_000;
const MAX_HOPS = 15;

/**
 * A browser without a renderer: one cookie jar, requests to loopback only ("localhost"
 * is pinned to 127.0.0.1, where quire listens), redirects followed by hand.
 */
export class HttpBrowser {
  constructor({ userAgent = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0' } = {}) {
    this.jar = new CookieJar();
    this.userAgent = userAgent;
  }

  /** One request, no redirect following. */
  request(method, urlString, { form, crossSite = false } = {}) {
    const url = new URL(urlString);
    const body = form ? new URLSearchParams(form).toString() : undefined;
    const headers = { 'user-agent': this.userAgent, accept: 'text/html,application/xhtml+xml' };
    const cookie = this.jar.header(url, { crossSite, method });
    if (cookie) headers.cookie = cookie;
    if (body !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers['content-length'] = Buffer.byteLength(body);
    }
    return new Promise((resolve, reject) => {
      const req = http.request(url, {
        method,
        headers,
        lookup: (host, opts, cb) => {
          if (host === 'localhost') {
            return opts?.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4);
          }
          return cb(new Error(`unexpected host ${host}: the tests talk to loopback only`));
        },
        timeout: REQUEST_TIMEOUT_MS,
      }, (res) => {
        const chunks = [];
        res.on('data', (d) => chunks.push(d));
        res.on('end', () => {
          this.jar.store(url, res.headers['set-cookie'] ?? []);
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

export const describeHops = (hops) => hops.map((h) => `${h.method} ${h.url} -> ${h.status}${h.location ? ` ${h.location}` : ''}`).join('\n');

// ---------------------------------------------------------------- processes

const started = []; // { name, child, log }
const cleanups = [];

/** A required environment variable. */
export function env(name) {
  const v = process.env[name];
  if (!v) throw new SetupError(`${name} must be set`);
  return v;
}

/** `n` different loopback ports nobody listens on (all held until all are chosen). */
export async function freePorts(n) {
  const open = () => new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
  const servers = await Promise.all(Array.from({ length: n }, open));
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export const randomSecret = (bytes) => randomBytes(bytes).toString('base64');

/**
 * Starts `command` with its output in `<work>/<name>.log`; stopped by `stopAll`. With
 * `stdin: 'pipe'` its stdin stays open while this process lives (for a child that
 * stops when its stdin closes).
 */
export function startProcess(work, name, command, args, { cwd, env: vars, stdin = 'ignore' }) {
  const log = join(work, `${name}.log`);
  const fd = openSync(log, 'a');
  const child = spawn(command, args, { cwd, env: vars, stdio: [stdin, fd, fd] });
  closeSync(fd);
  const proc = { name, child, log, exited: null };
  child.on('exit', (code, signal) => { proc.exited = signal ?? code; });
  child.on('error', (e) => { proc.exited = String(e.message); });
  started.push(proc);
  return proc;
}

/** This process's environment without any ROCKET_* (a developer's own must not leak in). */
function cleanEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ROCKET_')));
}

/**
 * `quire serve` on 127.0.0.1:`port`, configured by environment alone: no Rocket.toml,
 * its own SQLite file and secret key in `<work>/<name>/`, `auth` as ROCKET_AUTH and, when
 * given, `site` as ROCKET_SITE (a TOML table such as `{timezone="Europe/Berlin"}`) and
 * `mail` as ROCKET_MAIL (the `mailTable()` of `startSmtp`, say).
 * Returns the process with `env`, the variables it was started with (for `quire doctor`).
 */
export function startQuire(work, { name, bin, port, auth, site, mail, profile = 'debug' }) {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  const vars = {
    ...cleanEnv(),
    ROCKET_PROFILE: profile,
    ROCKET_CONFIG: '/nonexistent/Rocket.toml',
    ROCKET_ADDRESS: '127.0.0.1',
    ROCKET_PORT: String(port),
    ROCKET_LOG_LEVEL: 'normal',
    ROCKET_CLI_COLORS: 'false',
    ROCKET_SECRET_KEY: randomSecret(64),
    ROCKET_DATABASES: `{quire={url="sqlite://${dir}/quire.sqlite?mode=rwc"}}`,
    ROCKET_AUTH: auth,
    ...(site ? { ROCKET_SITE: site } : {}),
    ...(mail ? { ROCKET_MAIL: mail } : {}),
  };
  const proc = startProcess(work, `quire-${name}`, bin, ['serve'], { cwd: dir, env: vars });
  Object.assign(proc, { bin, dir, env: vars });
  proc.health = `http://127.0.0.1:${port}/healthz`;
  return proc;
}

/**
 * node oidc-provider (tests/interop/op.mjs) on 127.0.0.1:`port`, with one client that
 * redirects to `rpOrigin` and is called back (back-channel logout) at `backchannelOrigin`.
 */
export function startOp(work, { port, rpOrigin, backchannelOrigin, clientId, clientSecret }) {
  const vars = {
    ...cleanEnv(),
    OP_PORT: String(port),
    RP_ORIGIN: rpOrigin,
    RP_BACKCHANNEL_ORIGIN: backchannelOrigin,
    CLIENT_ID: clientId,
    CLIENT_SECRET: clientSecret,
  };
  const proc = startProcess(work, 'op', process.execPath, ['op.mjs'], { cwd: INTEROP_DIR, env: vars });
  proc.issuer = `http://127.0.0.1:${port}`;
  proc.health = `${proc.issuer}/.well-known/openid-configuration`;
  return proc;
}

/**
 * The mail tests' SMTP server (tests/mail/smtp_server.py: aiosmtpd, installed by
 * tests/mail/install.sh, which the harness's run.sh calls) on 127.0.0.1:`port`, plain
 * SMTP. Every message it accepts is a JSON file in `<work>/<name>-inbox/` (from, to,
 * subject, text and html parts); `mails()` reads them, oldest first. It runs until it is
 * stopped or this process's end closes its stdin.
 */
export function startSmtp(work, { port, name = 'smtp' }) {
  const inbox = join(work, `${name}-inbox`);
  mkdirSync(inbox, { recursive: true });
  const proc = startProcess(work, name, process.env.PYTHON || 'python3',
    [join(MAIL_DIR, 'smtp_server.py'), '--port', String(port), '--out', inbox],
    { cwd: work, env: { ...cleanEnv(), PYTHONUNBUFFERED: '1' }, stdin: 'pipe' });
  Object.assign(proc, {
    port,
    inbox,
    url: `smtp://127.0.0.1:${port}`,
    ready: async () => existsSync(proc.log) && readFileSync(proc.log, 'utf8').includes(`ready ${port}`),
    /** Every message received so far, oldest first. */
    mails: () => readdirSync(inbox).filter((f) => f.endsWith('.json')).sort()
      .map((f) => JSON.parse(readFileSync(join(inbox, f), 'utf8'))),
    /** Waits up to `seconds` for a message `match` accepts; returns it, or null. */
    async waitFor(match, seconds = 15) {
      const deadline = Date.now() + seconds * 1000;
      for (;;) {
        const found = proc.mails().find(match);
        if (found || Date.now() > deadline) return found ?? null;
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    /** quire's `[mail]` table (for ROCKET_MAIL) sending here, retrying every second. */
    mailTable: (from) => `{smtp_url="${proc.url}",from="${from}",retry_seconds=1,poll_seconds=1}`,
  });
  return proc;
}

/** Waits until each process is ready (its `ready()` says so, or else its health URL
 *  answers 200); a process that exits, or a wait past `withinSeconds`, is a SetupError. */
export async function waitHealthy(procs, withinSeconds = 30) {
  const deadline = Date.now() + withinSeconds * 1000;
  const answers = async (u) => {
    try {
      return (await fetch(u, { signal: AbortSignal.timeout(2000) })).status === 200;
    } catch {
      return false;
    }
  };
  const ok = (p) => (p.ready ? p.ready() : answers(p.health));
  for (const p of procs) {
    while (!(await ok(p))) {
      const dead = procs.find((q) => q.exited !== null);
      if (dead) throw new SetupError(`${dead.name} exited (${dead.exited}) during start-up`);
      if (Date.now() > deadline) throw new SetupError(`${p.health ?? p.name} not ready after ${withinSeconds}s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Runs `fn` (e.g. closing a browser) when the harness ends, before processes are stopped. */
export function atEnd(fn) {
  cleanups.push(fn);
}

/** Stops every started process that is still running: SIGTERM, then SIGKILL after 5 s. */
export async function stopAll() {
  await Promise.all(started.map(async (p) => {
    if (p.exited !== null) return;
    const gone = new Promise((r) => p.child.once('exit', r));
    p.child.kill('SIGTERM');
    const timer = setTimeout(() => p.child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }));
}

/** The last `n` lines of every process log, for a failed run. */
function printLogs(n = 40) {
  for (const p of started) {
    if (!existsSync(p.log)) continue;
    const lines = readFileSync(p.log, 'utf8').trimEnd().split('\n');
    if (lines.length === 1 && lines[0] === '') continue;
    console.error(`--- last lines of ${p.name}.log`);
    console.error(lines.slice(-n).join('\n'));
  }
}

// A harness that dies any other way still leaves no process behind.
process.on('exit', () => {
  for (const p of started) if (p.exited === null) p.child.kill('SIGKILL');
});

// ---------------------------------------------------------------- the run

let run = null; // { name, began, work, timer, finished }

/**
 * Starts a run: a fresh work folder, `setup(work)` (start the processes, wait for them),
 * and a time limit of `timeoutSeconds` for set-up and checks together. A set-up that
 * fails, the time limit, or an interruption ends the run at once, through `end`.
 */
export async function begin(name, setup, { timeoutSeconds }) {
  const work = mkdtempSync(join(tmpdir(), `quire-${name}.`));
  run = { name, began: Date.now(), work, finished: false };
  run.timer = setTimeout(() => end(`${name}: everything finished within ${timeoutSeconds}s`), timeoutSeconds * 1000);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => end(`${name}: ran to the end (stopped by ${sig})`));
  try {
    await setup(work);
  } catch (e) {
    if (e instanceof SetupError) await end(`${name}: set-up: ${e.message}`);
    else await end(`${name}: set-up without an unexpected error`, e?.stack ?? String(e));
  }
}

/**
 * Ends the run (counting `failure`, if given, as one more failed check): runs the
 * `atEnd` hooks, stops every process, shows their logs when anything failed, removes the
 * work folder, prints the summary as the last line and exits, 0 when every check passed.
 */
export async function end(failure, detail) {
  if (!run || run.finished) return;
  run.finished = true;
  clearTimeout(run.timer);
  if (failure) check(false, failure, detail);
  for (const fn of cleanups.splice(0)) {
    try {
      await fn();
    } catch (e) {
      console.error(`${run.name}: cleanup: ${e?.message ?? e}`);
    }
  }
  await stopAll();
  if (failed > 0) printLogs();
  rmSync(run.work, { recursive: true, force: true });
  console.log(`\n${run.name}: ran in ${Math.round((Date.now() - run.began) / 1000)}s`);
  console.log(summaryLine());
  process.exit(failed === 0 ? 0 : 1);
}
