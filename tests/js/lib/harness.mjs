// What the client and browser tests share: the settings the Rust harness passes in the environment,
// numbered steps that each assert something, the line protocol for asking the harness to
// do an administrator's job (enabling a client), and a small cookie-keeping user agent
// that reads the server's HTML forms.

import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

/** A setting the Rust harness must pass (tests/tests/js_clients.rs). */
export function setting(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run this through tests/tests/js_clients.rs (scripts/test)`);
  }
  return value;
}

const passed = [];

/**
 * Runs one step. A failure prints why, reports the steps so far and exits 1: later
 * steps build on earlier ones.
 */
export async function step(name, body) {
  try {
    await body();
  } catch (error) {
    console.log(`not ok - ${name}`);
    console.log(String(error?.stack ?? error).replace(/^/gm, '    '));
    if (error?.cause) console.log(`    cause: ${JSON.stringify(error.cause)}`);
    finish([name]);
  }
  passed.push(name);
  console.log(`ok - ${name}`);
}

/** Reports the result to the harness and exits. */
export function finish(failed = []) {
  console.log(`HEARTH-RESULT ${JSON.stringify({ passed, failed })}`);
  console.log(`${passed.length} passed, ${failed.length} failed`);
  process.exit(failed.length === 0 ? 0 : 1);
}

const answers = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/**
 * Asks the harness for an administrator's action (`{"enable": {"site", "client_id"}}`)
 * with one line on stdout; the harness answers one JSON line on stdin.
 */
export async function askHarness(request) {
  console.log(`HEARTH-ASK ${JSON.stringify(request)}`);
  const { value, done } = await answers.next();
  assert.ok(!done, 'the harness closed stdin instead of answering');
  const answer = JSON.parse(value);
  assert.equal(answer.ok, true, `the harness refused ${JSON.stringify(request)}: ${value}`);
  return answer;
}

/** Enables a registered client the way `hearth client enable` does. */
export function enableClient(site, clientId) {
  return askHarness({ enable: { site, client_id: clientId } });
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" };

function unescapeHtml(text) {
  return text.replace(/&(amp|lt|gt|quot|#39);/g, (_, name) => ENTITIES[name]);
}

function attributes(tag) {
  const found = {};
  for (const match of tag.matchAll(/([a-zA-Z_:-]+)(?:="([^"]*)")?/g)) {
    found[match[1].toLowerCase()] = unescapeHtml(match[2] ?? '');
  }
  return found;
}

/**
 * The forms of a page: action, method, and fields (inputs with their type, name, value
 * and whether they are checked; buttons with their name and value).
 */
export function forms(html) {
  return [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)].map(([, open, inner]) => {
    const form = attributes(open);
    const inputs = [...inner.matchAll(/<input\b([^>]*)>/g)].map(([, tag]) => attributes(tag));
    const buttons = [...inner.matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/g)].map(
      ([, tag, label]) => ({ ...attributes(tag), label: unescapeHtml(label) }),
    );
    return {
      action: form.action,
      method: (form.method ?? 'get').toLowerCase(),
      inputs,
      buttons,
      text: unescapeHtml(inner.replace(/<[^>]+>/g, ' ')).replace(/\s+/g, ' ').trim(),
    };
  });
}

/** The value of the one hidden field `name` of `form`. */
export function hidden(form, name) {
  const fields = form.inputs.filter((i) => i.type === 'hidden' && i.name === name);
  assert.equal(fields.length, 1, `one hidden ${name} field in the form to ${form.action}`);
  assert.ok(fields[0].value.length >= 32, `${name} looks random`);
  return fields[0].value;
}

/** The text of the page's first h1. */
export function heading(html) {
  const match = html.match(/<h1\b[^>]*>([\s\S]*?)<\/h1>/);
  return match ? unescapeHtml(match[1]) : undefined;
}

/**
 * A user agent over HTTP: keeps cookies (name, value, path; host-only), never follows
 * redirects by itself, and reports each answer with its body read.
 */
export class UserAgent {
  #cookies = new Map();

  cookieFor(url) {
    const { pathname } = new URL(url);
    return [...this.#cookies.values()]
      .filter((c) => pathname.startsWith(c.path))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  /** The attributes of the cookie `name` as last set. */
  cookie(name) {
    return this.#cookies.get(name);
  }

  #keep(response, url) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...rest] = line.split(';').map((p) => p.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const attrs = Object.fromEntries(
        rest.map((p) => {
          const [k, v = ''] = p.split('=');
          return [k.toLowerCase(), v];
        }),
      );
      const path = attrs.path ?? new URL(url).pathname.replace(/[^/]*$/, '');
      if (value === '' || attrs['max-age'] === '0') {
        this.#cookies.delete(name);
      } else {
        this.#cookies.set(name, { name, value, path, attrs });
      }
    }
  }

  async #send(url, init) {
    const headers = new Headers(init.headers);
    const cookie = this.cookieFor(url);
    if (cookie) headers.set('cookie', cookie);
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.#keep(response, url);
    const body = await response.text();
    return { status: response.status, headers: response.headers, body, url };
  }

  get(url) {
    return this.#send(url, { method: 'GET' });
  }

  /** POSTs `fields` (pairs, names may repeat) as a form. */
  post(url, fields) {
    return this.#send(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
  }
}

/** Asserts the headers every authorization page carries. */
export function assertPageHeaders(headers, what) {
  assert.match(headers.get('content-type') ?? '', /^text\/html/, `${what} is HTML`);
  assert.equal(headers.get('x-frame-options'), 'DENY', `${what} refuses framing`);
  assert.match(headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, `${what} CSP`);
  assert.match(headers.get('cache-control') ?? '', /no-store/, `${what} is not cached`);
}

/**
 * Debian's Chromium, headless, with the flags every browser test uses (no sandbox, no
 * GPU, no network of its own, no updates, no first-run pages).
 */
export function launchChromium(executablePath) {
  return chromium.launch({
    executablePath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/** Makes `folder` exist and empty (a test's screenshots folder). */
export async function emptyFolder(folder) {
  await rm(folder, { recursive: true, force: true });
  await mkdir(folder, { recursive: true });
}
