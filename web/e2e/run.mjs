#!/usr/bin/env node
// Browser tests against the real server on a fresh data dir.
//
//   npm run e2e                         # uses ../target/debug/guanxi
//   GUANXI_BIN=/path/to/guanxi npm run e2e
//   E2E_ONLY=advanced npm run e2e       # only tests whose name contains the text
//
// 1. starts `guanxi serve --listen 127.0.0.1:0 --data-dir <tmp>` and reads its port from stdout;
// 2. serves the built UI (web/dist) from a small static server that proxies /api to it
//    (until the server embeds web/dist; E2E_SERVER_UI=1 uses the server's own UI instead);
// 3. drives Debian's /usr/bin/chromium through playwright-core and runs e2e/tests/*.mjs;
// 4. prints "N passed, N failed, N skipped" and exits non-zero on a failure.
// Screenshots go to e2e/screenshots/ (gitignored).
import { spawn, spawnSync } from 'node:child_process'
import { createServer, request as httpRequest } from 'node:http'
import { mkdtempSync, mkdirSync, readFileSync, existsSync, statSync, rmSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve, extname, dirname } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { chromium } from 'playwright-core'

const here = dirname(fileURLToPath(import.meta.url))
const webDir = resolve(here, '..')
const bin = resolve(webDir, process.env.GUANXI_BIN ?? '../target/debug/guanxi')
const shotsDir = join(here, 'screenshots')
mkdirSync(shotsDir, { recursive: true })

if (!existsSync(bin)) {
  console.error(`guanxi binary not found at ${bin} (set GUANXI_BIN)`)
  process.exit(2)
}

const children = []
function cleanup() {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM')
}
process.on('exit', cleanup)
process.on('SIGINT', () => process.exit(130))

export const ADMIN = { username: 'e2eboss', password: 'Zp#2026-e2e-Admin' }

/** Creates the first administrator with the CLI; false when this binary has no such command. */
function createAdmin(dataDir) {
  const r = spawnSync(bin, ['create-admin', '--username', ADMIN.username, '--display-name', '测试管理员', '--password', ADMIN.password], {
    env: { ...process.env, GUANXI_DATA_DIR: dataDir, RUST_LOG: 'warn' },
    encoding: 'utf8',
  })
  if (r.status !== 0) console.log(`create-admin unavailable or failed: ${(r.stderr || r.stdout || '').trim().split('\n').pop()}`)
  return r.status === 0
}

async function startServer(dataDir) {
  const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // A robot cannot read the captcha: raise its threshold so that the lockout can be reached.
    env: { GUANXI_AUTH__CAPTCHA_AFTER_FAILURES: '100', ...process.env, GUANXI_DATA_DIR: dataDir, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
  })
  children.push(child)
  let log = ''
  child.stderr.on('data', (d) => (log += d))
  return await new Promise((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 30s:\n${log}`)), 30000)
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolvePort({ url: m[1], child, log: () => log })
      }
    })
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${log}`)))
  })
}

const MIME = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png', '.woff2': 'font/woff2', '.woff': 'font/woff', '.ttf': 'font/ttf', '.json': 'application/json' }

function startStatic(distDir, apiUrl) {
  const api = new URL(apiUrl)
  const server = createServer((req, res) => {
    if (req.url.startsWith('/api/') || req.url.startsWith('/healthz')) {
      const p = httpRequest(
        { host: api.hostname, port: api.port, path: req.url, method: req.method, headers: { ...req.headers, host: api.host } },
        (r) => {
          res.writeHead(r.statusCode, r.headers)
          r.pipe(res)
        },
      )
      p.on('error', () => {
        res.writeHead(502)
        res.end()
      })
      req.pipe(p)
      return
    }
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname)
    let file = join(distDir, path)
    if (!file.startsWith(distDir) || !existsSync(file) || statSync(file).isDirectory()) file = join(distDir, 'index.html')
    res.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream' })
    res.end(readFileSync(file))
  })
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r({ url: `http://127.0.0.1:${server.address().port}`, server })))
}

function build(outDir, env) {
  console.log(`building UI into ${outDir}`)
  const r = spawnSync('npx', ['vite', 'build', '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn'], { cwd: webDir, stdio: 'inherit', env: { ...process.env, ...env } })
  if (r.status !== 0) process.exit(r.status ?? 1)
}

/** Newest modification time among the UI's sources, to rebuild a stale dist. */
function newestSource() {
  let newest = 0
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name)
      if (e.isDirectory()) walk(p)
      else newest = Math.max(newest, statSync(p).mtimeMs)
    }
  }
  walk(join(webDir, 'src'))
  for (const f of ['index.html', 'vite.config.ts', 'package-lock.json']) newest = Math.max(newest, statSync(join(webDir, f)).mtimeMs)
  return newest
}

// ---- main ----
const dataDir = mkdtempSync(join(tmpdir(), 'guanxi-e2e-'))
const adminCreated = createAdmin(dataDir)
const srv = await startServer(dataDir)
const probe = await fetch(`${srv.url}/api/v1/auth/config`)
const hasAuth = probe.status !== 404
console.log(`guanxi at ${srv.url}; auth endpoints: ${hasAuth ? 'present' : 'absent (auth tests are skipped)'}`)

let distDir = join(webDir, 'dist')
if (!hasAuth) {
  // A server without sign-in: use a build that allows the documented dev-only "no auth" mode.
  distDir = join(here, '.tmp', 'dist-noauth')
  build(distDir, { VITE_ALLOW_NO_AUTH: '1' })
} else if (!existsSync(join(distDir, 'index.html')) || process.env.E2E_BUILD === '1' || newestSource() > statSync(join(distDir, 'index.html')).mtimeMs) {
  build(distDir, {})
}
const ui = process.env.E2E_SERVER_UI === '1' ? { url: srv.url } : await startStatic(distDir, srv.url)

const userDataDir = mkdtempSync(join(tmpdir(), 'guanxi-e2e-chromium-'))
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1366, height: 860 },
  locale: 'zh-CN',
  timezoneId: 'Asia/Shanghai',
  acceptDownloads: true,
})
context.setDefaultTimeout(15000)
// Closing the last tab ends Chromium's session and drops session cookies: keep one tab open.
const keepAlive = context.pages()[0] ?? (await context.newPage())

// An API client with its own session (cookie + CSRF header), for test set-up.
async function apiSession(login, password) {
  const jar = {}
  const call = async (method, path, body) => {
    const headers = { 'content-type': 'application/json', accept: 'application/json' }
    const cookie = Object.entries(jar).map(([k, v]) => `${k}=${v}`).join('; ')
    if (cookie) headers.cookie = cookie
    if (jar.gx_csrf && method !== 'GET') headers['x-csrf-token'] = jar.gx_csrf
    const res = await fetch(`${srv.url}/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
    for (const c of res.headers.getSetCookie?.() ?? []) {
      const [kv] = c.split(';')
      const i = kv.indexOf('=')
      jar[kv.slice(0, i).trim()] = kv.slice(i + 1).trim()
    }
    const text = await res.text()
    return { status: res.status, body: text ? JSON.parse(text) : null }
  }
  if (login) {
    const r = await call('POST', '/auth/login', { login, password })
    if (r.status !== 200 || r.body?.data?.status !== 'ok') throw new Error(`API login failed: ${JSON.stringify(r.body)}`)
  }
  return call
}
const adminApi = hasAuth && adminCreated ? await apiSession(ADMIN.username, ADMIN.password) : await apiSession()

const ctx = {
  base: ui.url,
  api: srv.url,
  hasAuth,
  adminCreated,
  admin: ADMIN,
  apiSession,
  context,
  shotsDir,
  async newPage() {
    const page = await context.newPage()
    page.on('pageerror', (e) => console.log(`    [pageerror] ${e.message}`))
    if (process.env.E2E_DEBUG) page.on('response', (r) => r.url().includes('/api/') && console.log(`    [${r.status()}] ${r.request().method()} ${r.url()}`))
    return page
  },
  async shot(page, name) {
    await page.waitForTimeout(300)
    await page.screenshot({ path: join(shotsDir, `${name}.png`), fullPage: false })
  },
  /** Calls the API as the administrator. */
  apiJson: (method, path, body) => adminApi(method, path, body),
  /** Signs the browser in through the login page (no-op on a server without sign-in). */
  async signIn(page, login = ADMIN.username, password = ADMIN.password) {
    if (!hasAuth) return
    await page.goto(ctx.base + '/login')
    await page.locator('[data-testid="login-name"]').fill(login)
    await page.locator('[data-testid="login-password"]').fill(password)
    await page.locator('[data-testid="login-submit"]').click()
    await page.waitForURL((u) => !u.pathname.startsWith('/login'))
  },
}

const only = process.env.E2E_ONLY
const files = readdirSync(join(here, 'tests')).filter((f) => f.endsWith('.mjs')).sort()
let passed = 0
let failed = 0
let skipped = 0
for (const f of files) {
  const mod = await import(pathToFileURL(join(here, 'tests', f)).href)
  for (const t of mod.tests ?? []) {
    if (only && !t.name.includes(only)) continue
    const reason = typeof t.skip === 'function' ? t.skip(ctx) : t.skip
    if (reason) {
      skipped++
      console.log(`SKIP ${t.name} — ${reason}`)
      continue
    }
    const started = Date.now()
    try {
      // Each test starts with fresh browser preferences (language, columns, views).
      await keepAlive.goto(ctx.base + '/favicon.svg')
      await keepAlive.evaluate('localStorage.clear()')
      if (t.signIn !== false && hasAuth) {
        await context.clearCookies()
        const p = await ctx.newPage()
        await ctx.signIn(p)
        if (process.env.E2E_DEBUG) {
          const cs = await context.cookies()
          const r = await fetch(`${srv.url}/api/v1/me`, { headers: { cookie: cs.map((c) => `${c.name}=${c.value}`).join('; ') } })
          console.log('    cookies after sign-in:', cs.map((c) => `${c.name}=${c.value.slice(0, 6)}`).join(' '), 'me →', r.status)
        }
        await p.close()
        if (process.env.E2E_DEBUG) {
          const cs = await context.cookies()
          const r = await fetch(`${srv.url}/api/v1/me`, { headers: { cookie: cs.map((c) => `${c.name}=${c.value}`).join('; ') } })
          console.log('    after close:', cs.map((c) => `${c.name}=${c.value.slice(0, 6)}`).join(' '), 'me →', r.status)
        }
      }
      await t.run(ctx)
      passed++
      console.log(`PASS ${t.name} (${Date.now() - started} ms)`)
    } catch (e) {
      failed++
      console.log(`FAIL ${t.name}\n    ${String(e?.stack ?? e).split('\n').slice(0, 6).join('\n    ')}`)
      for (const p of context.pages()) {
        if (p === keepAlive) continue
        try {
          await p.screenshot({ path: join(shotsDir, `FAILED-${t.name.replace(/\W+/g, '_')}.png`) })
        } catch {
          /* page closed */
        }
      }
    } finally {
      for (const p of context.pages()) if (p !== keepAlive) await p.close().catch(() => {})
    }
  }
}
await context.close()
ui.server?.close()
srv.child.kill('SIGTERM')
rmSync(userDataDir, { recursive: true, force: true })
rmSync(dataDir, { recursive: true, force: true })
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(failed ? 1 : 0)
