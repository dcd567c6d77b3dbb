// Qala's service worker: the rider pages without a connection. Served as /sw.js behind a first line that sets
// QALA_SW = {version, shell} (app/web/pwa.py): the version is a digest of the static files, so a deploy replaces
// this worker and its shell cache.
//
// What it keeps, and why nothing stale passes for fresh:
//  - the shell (CSS, scripts, icons): cache first, one cache per version;
//  - the home page and each stop page, and the last arrivals answer of each stop: network first, and only when the
//    network fails the kept copy, marked — pages get data-page="offline" (the page then says "as of HH:MM — no
//    connection"), arrivals answers the header X-Qala-Copy: offline;
//  - nothing else: card, account and payment answers never enter a cache (only the arrivals path is matched, and
//    an answer marked private or no-store is not kept even there).
/* global QALA_SW */
"use strict";

const SHELL_CACHE = "qala-shell-" + QALA_SW.version;
const PAGES = "qala-pages";
const BOARDS = "qala-boards";
const STOP_PAGE = /^\/stops\/[^/]+$/;
const ARRIVALS = /^\/api\/v1\/stops\/[^/]+\/arrivals$/;
const ONLINE_MARK = 'data-page="network"';
const OFFLINE_MARK = 'data-page="offline"';

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.addAll(QALA_SW.shell)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys().then((names) => Promise.all(
    names.filter((name) => name.startsWith("qala-shell-") && name !== SHELL_CACHE).map((name) => caches.delete(name)),
  )).then(() => self.clients.claim()));
});

function keepable(response) {
  const control = response.headers.get("Cache-Control") || "";
  return response.status === 200 && !/no-store|private/.test(control);
}

async function keep(cacheName, key, response) {
  if (!keepable(response)) return;
  const cache = await caches.open(cacheName);
  await cache.put(key, response);
}

// a kept answer rebuilt with its body as stored (already decoded: no length or encoding of the original applies)
function copyHeaders(kept) {
  const headers = new Headers(kept.headers);
  headers.delete("Content-Length");
  headers.delete("Content-Encoding");
  return headers;
}

// a page: the network's answer (kept for later), else the kept copy marked as offline
async function page(event, key) {
  try {
    const response = await fetch(event.request);
    const type = response.headers.get("Content-Type") || "";
    if (type.startsWith("text/html")) event.waitUntil(keep(PAGES, key, response.clone()));
    return response;
  } catch (error) {
    const kept = await caches.match(key, { cacheName: PAGES });
    if (!kept) throw error;
    const text = (await kept.text()).replace(ONLINE_MARK, OFFLINE_MARK);
    return new Response(text, { status: 200, headers: copyHeaders(kept) });
  }
}

// a stop's arrivals: the network's answer (kept, per stop and query), else the last one kept, marked as a copy
async function arrivals(event, url) {
  try {
    const response = await fetch(event.request);
    event.waitUntil(keep(BOARDS, url.pathname + url.search, response.clone()));
    return response;
  } catch (error) {
    const cache = await caches.open(BOARDS);
    const kept = (await cache.match(url.pathname + url.search)) || (await cache.match(url.pathname, { ignoreSearch: true }));
    if (!kept) throw error;
    const headers = copyHeaders(kept);
    headers.set("X-Qala-Copy", "offline");
    headers.delete("ETag"); // the copy must not be revalidated as if the browser still held a live answer
    return new Response(await kept.blob(), { status: 200, headers });
  }
}

async function shell(event) {
  const kept = await caches.match(event.request, { cacheName: SHELL_CACHE });
  return kept || fetch(event.request);
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && (url.pathname === "/" || STOP_PAGE.test(url.pathname))) {
    event.respondWith(page(event, url.pathname));
  } else if (ARRIVALS.test(url.pathname)) {
    event.respondWith(arrivals(event, url));
  } else if (QALA_SW.shell.includes(url.pathname + url.search)) {
    event.respondWith(shell(event));
  }
  // everything else goes to the network untouched: no cache ever sees it
});
