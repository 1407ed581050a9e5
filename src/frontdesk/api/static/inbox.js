/*
 * <frontdesk-inbox>: frontdesk's in-app inbox, droppable into any page.
 *
 *   <script src="https://frontdesk.example/static/inbox.js" defer></script>
 *   <frontdesk-inbox api-base="https://frontdesk.example" user-id="u_42"
 *                    user-token="fdu_…" locale="fr-CA"></frontdesk-inbox>
 *
 * A bell with the unread count opens a panel of the user's items. New items arrive over the
 * inbox's Server-Sent Events stream and are announced to screen readers. Theme it with the
 * --frontdesk-inbox-* custom properties (see STYLES) or the bell, badge and panel ::part()s.
 * When the token is refused the element fires "frontdesk-inbox-unauthorized"; set a fresh
 * user-token attribute and it reconnects. The element reflects its state for the host page
 * to style or read: unread-count="3", connection="connecting|open|reconnecting|unauthorized".
 */
(() => {
  "use strict";

  const PAGE_SIZE = 20;
  const FIRST_RETRY_MS = 1000;
  const LONGEST_RETRY_MS = 30000;
  const CLOCK_TICK_MS = 30000;
  // The server sends a keep-alive every 15 seconds; three missed means the connection is dead.
  const SILENCE_LIMIT_MS = 45000;

  const STYLES = `
    :host {
      --accent: var(--frontdesk-inbox-accent, #2456d6);
      --surface: var(--frontdesk-inbox-surface, #ffffff);
      --text: var(--frontdesk-inbox-text, #1d2430);
      --muted: var(--frontdesk-inbox-muted, #5b6472);
      --border: var(--frontdesk-inbox-border, #d5dae1);
      --badge: var(--frontdesk-inbox-badge, #b42318);
      --unread: var(--frontdesk-inbox-unread-background, #eef3ff);
      --radius: var(--frontdesk-inbox-radius, 8px);
      display: inline-block;
      position: relative;
      font-family: var(--frontdesk-inbox-font, system-ui, -apple-system, "Segoe UI", sans-serif);
      color: var(--text);
      line-height: 1.4;
    }
    button { font: inherit; cursor: pointer; }
    :focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
    .bell {
      position: relative; display: grid; place-items: center; width: 2.75rem; height: 2.75rem;
      border: 1px solid var(--border); border-radius: 50%; background: var(--surface);
      color: var(--text);
    }
    .bell svg { width: 1.4rem; height: 1.4rem; }
    .badge {
      position: absolute; top: -0.3rem; right: -0.3rem; min-width: 1.25rem; padding: 0 0.3rem;
      border-radius: 999px; background: var(--badge); color: #fff; font-size: 0.75rem;
      font-weight: 700; line-height: 1.25rem; text-align: center; box-sizing: border-box;
    }
    .badge[hidden] { display: none; }
    .panel {
      position: absolute; right: 0; top: calc(100% + 0.5rem); z-index: 1000;
      width: var(--frontdesk-inbox-width, 24rem); max-width: calc(100vw - 2rem);
      max-height: var(--frontdesk-inbox-max-height, 32rem); overflow-y: auto;
      background: var(--surface); border: 1px solid var(--border); border-radius: var(--radius);
      box-shadow: 0 12px 32px rgb(0 0 0 / 0.16); text-align: left;
    }
    .panel[hidden] { display: none; }
    .panel-header, .panel-footer {
      display: flex; align-items: center; justify-content: space-between; gap: 0.5rem;
      padding: 0.75rem 1rem;
    }
    .panel-header { border-bottom: 1px solid var(--border); }
    .panel-footer:empty { display: none; }
    h2 { margin: 0; font-size: 1rem; }
    .link-button {
      border: 0; background: none; color: var(--accent); padding: 0.25rem; border-radius: 4px;
      text-decoration: underline;
    }
    .link-button:disabled { color: var(--muted); cursor: default; text-decoration: none; }
    .connection { margin: 0; padding: 0.5rem 1rem; font-size: 0.85rem; color: var(--muted); }
    .connection[hidden] { display: none; }
    ul { list-style: none; margin: 0; padding: 0; }
    .item { padding: 0.75rem 1rem; border-bottom: 1px solid var(--border); }
    .item.unread { background: var(--unread); }
    .item-title { margin: 0; font-weight: 600; }
    .item.unread .item-title::before {
      content: ""; display: inline-block; width: 0.5rem; height: 0.5rem; margin-right: 0.4rem;
      border-radius: 50%; background: var(--accent); vertical-align: middle;
    }
    .item-body { margin: 0.25rem 0; }
    .item-action { color: var(--accent); font-weight: 600; }
    .item-meta {
      display: flex; flex-wrap: wrap; align-items: center; gap: 0.75rem; margin-top: 0.4rem;
      font-size: 0.85rem; color: var(--muted);
    }
    .item-meta time { margin-right: auto; }
    .empty { margin: 0; padding: 1.5rem 1rem; color: var(--muted); text-align: center; }
    .empty[hidden] { display: none; }
    .visually-hidden {
      position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; border: 0;
      overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap;
    }
  `;

  const BELL_ICON = `
    <svg viewBox="0 0 24 24" aria-hidden="true" focusable="false" fill="none"
         stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">
      <path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9"/>
      <path d="M13.73 21a2 2 0 0 1-3.46 0"/>
    </svg>`;

  const TEMPLATE = `
    <button type="button" class="bell" part="bell" aria-expanded="false"
            aria-controls="panel" aria-label="Notifications">
      ${BELL_ICON}<span class="badge" part="badge" aria-hidden="true" hidden></span>
    </button>
    <section id="panel" class="panel" part="panel" aria-labelledby="panel-title" hidden>
      <div class="panel-header">
        <h2 id="panel-title" tabindex="-1">Notifications</h2>
        <button type="button" class="link-button" data-command="read-all">Mark all read</button>
      </div>
      <p class="connection" role="status" hidden>Reconnecting…</p>
      <ul aria-labelledby="panel-title"></ul>
      <p class="empty" hidden>No notifications yet.</p>
      <div class="panel-footer"></div>
    </section>
    <div class="visually-hidden" role="status" aria-live="polite" aria-atomic="true"></div>`;

  /** An SSE event stream read from a fetch response (fetch, unlike EventSource, may send the
   *  user token as an Authorization header, so the token stays out of URLs and access logs). */
  async function readServerSentEvents(body, onEvent, onActivity) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    let event = { type: "message", id: null, data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      onActivity();
      buffered += value;
      const lines = buffered.split(/\r\n|\r|\n/);
      buffered = lines.pop();
      for (const line of lines) {
        if (line === "") {
          if (event.data.length) onEvent({ ...event, data: event.data.join("\n") });
          event = { type: "message", id: event.id, data: [] };
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event.type = value;
        else if (field === "data") event.data.push(value);
        else if (field === "id" && !value.includes("\0")) event.id = value;
      }
    }
  }

  /** A relative time such as "3 minutes ago" or "yesterday", in the given locale. */
  function relativeTime(isoTime, locale, now) {
    const seconds = Math.round((Date.parse(isoTime) - now) / 1000);
    const format = new Intl.RelativeTimeFormat(locale, { numeric: "auto" });
    const units = [
      ["year", 31536000], ["month", 2592000], ["week", 604800],
      ["day", 86400], ["hour", 3600], ["minute", 60],
    ];
    for (const [unit, length] of units) {
      if (Math.abs(seconds) >= length) return format.format(Math.round(seconds / length), unit);
    }
    return format.format(0, "second");
  }

  /** Only web links become action links: a javascript: URL from a template would run here. */
  function safeLink(url) {
    try {
      const parsed = new URL(url, document.baseURI);
      return ["http:", "https:"].includes(parsed.protocol) ? parsed.href : null;
    } catch {
      return null;
    }
  }

  class FrontdeskInbox extends HTMLElement {
    static observedAttributes = ["api-base", "user-id", "user-token", "locale"];

    #root;
    #items = new Map(); // id → item, as the API returns it; the panel shows them newest first
    #unreadCount = 0; // from the stream alone: other answers may be older than its last event
    #nextCursor = null;
    #listLoaded = false;
    #lastEventId = null;
    #connection = null; // aborts the current stream, its retries and the clock
    #clock = null;

    constructor() {
      super();
      this.#root = this.attachShadow({ mode: "open" });
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(STYLES);
      this.#root.adoptedStyleSheets = [sheet];
      this.#root.innerHTML = TEMPLATE;
      this.#part(".bell").addEventListener("click", () => this.#toggle());
      this.#part(".panel").addEventListener("click", (event) => this.#onCommand(event));
      this.#part(".panel").addEventListener("keydown", (event) => this.#onPanelKey(event));
      this.#root.addEventListener("keydown", (event) => {
        if (event.key === "Escape" && this.#isOpen()) this.#close({ restoreFocus: true });
      });
      // Tabbing past the panel's last control closes it, as clicking elsewhere does.
      this.addEventListener("focusout", (event) => {
        if (this.#isOpen() && event.relatedTarget && !this.contains(event.relatedTarget)) {
          this.#close({ restoreFocus: false });
        }
      });
    }

    connectedCallback() {
      document.addEventListener("click", this.#onOutsideClick);
      this.#start();
    }

    disconnectedCallback() {
      document.removeEventListener("click", this.#onOutsideClick);
      this.#stop();
    }

    attributeChangedCallback(name, oldValue, newValue) {
      if (oldValue === newValue || !this.isConnected) return;
      if (name === "locale") {
        this.#render();
        return;
      }
      // A fresh token continues the same inbox; another user or server starts afresh.
      if (name !== "user-token") this.#forgetItems();
      this.#start();
    }

    get #locale() {
      return this.getAttribute("locale") || navigator.language;
    }

    #inboxUrl(path = "") {
      const base = (this.getAttribute("api-base") || "").replace(/\/$/, "");
      const user = encodeURIComponent(this.getAttribute("user-id") || "");
      return `${base}/v1/users/${user}/inbox${path}`;
    }

    #headers() {
      return { Authorization: `Bearer ${this.getAttribute("user-token") || ""}` };
    }

    #part(selector) {
      return this.#root.querySelector(selector);
    }

    // --- the live stream --------------------------------------------------------------------

    #start() {
      this.#stop();
      if (!this.getAttribute("user-id") || !this.getAttribute("user-token")) return;
      this.#connection = new AbortController();
      this.#clock = setInterval(() => this.#tickClock(), CLOCK_TICK_MS);
      this.#listen(this.#connection.signal);
    }

    #stop() {
      this.#connection?.abort();
      this.#connection = null;
      clearInterval(this.#clock);
    }

    #forgetItems() {
      this.#items.clear();
      this.#nextCursor = null;
      this.#listLoaded = false;
      this.#lastEventId = null;
      this.#setUnreadCount(0);
      this.#render();
    }

    async #listen(signal) {
      let retryMs = FIRST_RETRY_MS;
      this.#setConnection("connecting");
      while (!signal.aborted) {
        try {
          const answered = await this.#followStream(signal, (event) => {
            retryMs = FIRST_RETRY_MS;
            this.#setConnection("open");
            this.#onServerEvent(event);
          });
          if (answered === 401 || answered === 403) {
            this.#setConnection("unauthorized");
            this.dispatchEvent(new CustomEvent("frontdesk-inbox-unauthorized", { bubbles: true }));
            return;
          }
        } catch {
          // A network error or a cut stream: both end in the retry below.
        }
        if (signal.aborted) return;
        this.#setConnection("reconnecting");
        await this.#pause(retryMs, signal);
        retryMs = Math.min(retryMs * 2, LONGEST_RETRY_MS);
      }
    }

    /** One connection to the stream, resumed from the last event seen; returns the status
     *  when the server refuses it. A dead connection can look open for minutes, so it is cut
     *  when the browser goes offline or the server's keep-alives stop arriving. */
    async #followStream(signal, onEvent) {
      const attempt = new AbortController();
      const cut = () => attempt.abort();
      let watchdog;
      const stillAlive = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(cut, SILENCE_LIMIT_MS);
      };
      signal.addEventListener("abort", cut);
      window.addEventListener("offline", cut);
      try {
        stillAlive();
        const headers = { ...this.#headers(), Accept: "text/event-stream" };
        if (this.#lastEventId !== null) headers["Last-Event-ID"] = this.#lastEventId;
        const response = await fetch(this.#inboxUrl("/stream"), {
          headers, signal: attempt.signal, cache: "no-store",
        });
        if (!response.ok) return response.status;
        await readServerSentEvents(response.body, onEvent, stillAlive);
        return response.status;
      } finally {
        clearTimeout(watchdog);
        signal.removeEventListener("abort", cut);
        window.removeEventListener("offline", cut);
      }
    }

    /** Wait before reconnecting: jittered so many clients do not return at once, and cut
     *  short when the browser says it is back online. */
    #pause(ms, signal) {
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          window.removeEventListener("online", done);
          signal.removeEventListener("abort", done);
          resolve();
        };
        const timer = setTimeout(done, ms * (0.5 + Math.random() / 2));
        window.addEventListener("online", done);
        signal.addEventListener("abort", done);
      });
    }

    #onServerEvent({ type, id, data }) {
      if (id !== null) this.#lastEventId = id;
      const payload = JSON.parse(data);
      if (type === "unread_count") {
        this.#setUnreadCount(payload.unread_count);
        // The first page is read once the stream has fixed its starting point, so every item
        // is either in that page or comes over the stream: none falls between the two.
        if (!this.#listLoaded) this.#loadPage();
      } else if (type === "inbox_item" && !this.#items.has(payload.id)) {
        this.#items.set(payload.id, payload);
        this.#render();
        this.#announce(`New notification: ${payload.title}`);
      }
    }

    #setConnection(state) {
      this.setAttribute("connection", state);
      this.#part(".connection").hidden = state !== "reconnecting";
    }

    // --- the API ----------------------------------------------------------------------------

    async #request(path, method = "GET") {
      const response = await fetch(this.#inboxUrl(path), { method, headers: this.#headers() });
      if (!response.ok) throw new Error(`the inbox answered ${response.status}`);
      return response.json();
    }

    async #loadPage() {
      this.#listLoaded = true;
      const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
      if (this.#nextCursor) query.set("cursor", this.#nextCursor);
      try {
        const page = await this.#request(`?${query}`);
        for (const item of page.items) if (!this.#items.has(item.id)) this.#items.set(item.id, item);
        this.#nextCursor = page.next_cursor;
        this.#render();
      } catch {
        this.#announce("Notifications could not be loaded.");
      }
    }

    /** The next page; focus goes to its first item, where a keyboard user reads on. */
    async #loadMore() {
      const shown = new Set([...this.#visibleItems()].map((item) => item.id));
      await this.#loadPage();
      const firstNew = [...this.#visibleItems()].find((item) => !shown.has(item.id));
      if (firstNew) this.#firstControl(this.#itemElement(firstNew.id))?.focus();
    }

    async #markRead(id) {
      const item = await this.#request(`/${encodeURIComponent(id)}/read`, "POST");
      this.#items.set(id, item);
      this.#render();
      this.#focusInItem(id, "archive");
    }

    async #archive(id) {
      await this.#request(`/${encodeURIComponent(id)}/archive`, "POST");
      const ids = [...this.#visibleItems()].map((item) => item.id);
      const neighbour = ids[ids.indexOf(id) + 1] ?? ids[ids.indexOf(id) - 1];
      this.#items.delete(id);
      this.#render();
      this.#announce("Notification archived.");
      if (neighbour) this.#focusInItem(neighbour, "read") || this.#focusInItem(neighbour, "archive");
      else this.#part("#panel-title").focus();
    }

    async #readAll() {
      await this.#request("/read-all", "POST");
      const now = new Date().toISOString();
      for (const item of this.#items.values()) item.read_at ??= now;
      this.#render();
      this.#announce("All notifications marked as read.");
    }

    // --- the panel --------------------------------------------------------------------------

    #isOpen() {
      return !this.#part(".panel").hidden;
    }

    #toggle() {
      if (this.#isOpen()) this.#close({ restoreFocus: false });
      else this.#open();
    }

    #open() {
      this.#part(".panel").hidden = false;
      this.#part(".bell").setAttribute("aria-expanded", "true");
      this.#render();
    }

    #close({ restoreFocus }) {
      this.#part(".panel").hidden = true;
      this.#part(".bell").setAttribute("aria-expanded", "false");
      if (restoreFocus) this.#part(".bell").focus();
    }

    #onOutsideClick = (event) => {
      if (this.#isOpen() && !event.composedPath().includes(this)) this.#close({ restoreFocus: false });
    };

    async #onCommand(event) {
      const button = event.target.closest("button[data-command]");
      if (!button) return;
      const { command, itemId } = button.dataset;
      button.disabled = true;
      try {
        if (command === "read") await this.#markRead(itemId);
        else if (command === "archive") await this.#archive(itemId);
        else if (command === "read-all") await this.#readAll();
        else if (command === "load-more") await this.#loadMore();
      } catch {
        this.#announce("That did not work; please try again.");
      } finally {
        button.disabled = false;
      }
    }

    /** Up and Down move between items' first controls, as in a list of messages. */
    #onPanelKey(event) {
      if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
      const items = [...this.#root.querySelectorAll(".item")];
      const firsts = items.map((item) => this.#firstControl(item));
      const current = items.findIndex((item) => item.contains(this.#root.activeElement));
      const next = firsts[current + (event.key === "ArrowDown" ? 1 : -1)];
      if (next) {
        event.preventDefault();
        next.focus();
      }
    }

    *#visibleItems() {
      const newestFirst = [...this.#items.values()].sort((a, b) => (a.id < b.id ? 1 : -1));
      for (const item of newestFirst) if (item.archived_at === null) yield item;
    }

    #render() {
      const focused = this.#focusedControl();
      const now = Date.now();
      const list = this.#part("ul");
      const items = [...this.#visibleItems()];
      list.replaceChildren(...items.map((item) => this.#renderItem(item, now)));
      list.hidden = items.length === 0;
      this.#part(".empty").hidden = items.length > 0 || !this.#listLoaded;
      this.#part('[data-command="read-all"]').disabled = this.#unreadCount === 0;
      const footer = this.#part(".panel-footer");
      footer.replaceChildren();
      if (this.#nextCursor) footer.append(this.#button("Load more", { command: "load-more" }));
      if (focused) this.#root.querySelector(focused)?.focus();
    }

    /** A selector for the focused control if rendering replaces it, so that its replacement
     *  takes the focus: a new item arriving must not throw a keyboard user out of the list. */
    #focusedControl() {
      const control = this.#root.activeElement;
      if (!control?.closest("ul, .panel-footer")) return null;
      const which = control.dataset.command ? `[data-command="${control.dataset.command}"]` : "a";
      const item = control.closest(".item");
      return item ? `.item[data-item-id="${CSS.escape(item.dataset.itemId)}"] ${which}` : which;
    }

    #tickClock() {
      const now = Date.now();
      for (const time of this.#root.querySelectorAll("time")) {
        time.textContent = relativeTime(time.dateTime, this.#locale, now);
      }
    }

    #renderItem(item, now) {
      const entry = document.createElement("li");
      entry.className = item.read_at === null ? "item unread" : "item";
      entry.dataset.itemId = item.id;
      const title = this.#element("p", "item-title", item.title);
      if (item.read_at === null) title.prepend(this.#element("span", "visually-hidden", "Unread: "));
      entry.append(title);
      if (item.body) entry.append(this.#element("p", "item-body", item.body));
      const href = item.action_url && safeLink(item.action_url);
      if (href) {
        const action = this.#element("a", "item-action", "Open");
        action.href = href;
        action.setAttribute("aria-label", `Open: ${item.title}`);
        entry.append(action);
      }
      const meta = this.#element("div", "item-meta");
      const time = this.#element("time", "", relativeTime(item.created_at, this.#locale, now));
      time.dateTime = item.created_at;
      time.title = new Date(item.created_at).toLocaleString(this.#locale);
      meta.append(time);
      if (item.read_at === null) {
        meta.append(this.#button("Mark read", { command: "read", itemId: item.id }, item.title));
      }
      meta.append(this.#button("Archive", { command: "archive", itemId: item.id }, item.title));
      entry.append(meta);
      return entry;
    }

    #element(tag, className, text) {
      const element = document.createElement(tag);
      if (className) element.className = className;
      if (text !== undefined) element.textContent = text;
      return element;
    }

    /** A text button; ``about`` (an item's title) completes its accessible name, since a list
     *  of identical "Mark read" buttons says nothing to a screen-reader user. */
    #button(label, data, about) {
      const button = this.#element("button", "link-button", label);
      button.type = "button";
      Object.assign(button.dataset, data);
      if (about) button.setAttribute("aria-label", `${label}: ${about}`);
      return button;
    }

    #itemElement(id) {
      return this.#root.querySelector(`.item[data-item-id="${CSS.escape(id)}"]`);
    }

    #firstControl(itemElement) {
      return itemElement?.querySelector("a, button") ?? null;
    }

    #focusInItem(id, command) {
      const button = this.#itemElement(id)?.querySelector(`[data-command="${command}"]`);
      button?.focus();
      return Boolean(button);
    }

    #setUnreadCount(count) {
      this.#unreadCount = count;
      const badge = this.#part(".badge");
      badge.textContent = this.#unreadCount > 99 ? "99+" : String(this.#unreadCount);
      badge.hidden = this.#unreadCount === 0;
      this.#part(".bell").setAttribute("aria-label", `Notifications, ${this.#unreadCount} unread`);
      this.setAttribute("unread-count", String(this.#unreadCount));
      this.#part('[data-command="read-all"]').disabled = this.#unreadCount === 0;
    }

    /** Screen readers speak a live region's change; emptying it first means the same words
     *  twice in a row are spoken twice. */
    #announce(message) {
      const region = this.#part('[aria-live]');
      region.textContent = "";
      requestAnimationFrame(() => { region.textContent = message; });
    }
  }

  if (!customElements.get("frontdesk-inbox")) customElements.define("frontdesk-inbox", FrontdeskInbox);
})();
