/**
 * The "Room" side panel: one room (the active `.chat` document) seen through the
 * Noctis rooms REST API.
 *
 * All user text is put in the DOM with `textContent`; no HTML from the server or from
 * users is ever parsed.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import {
  IAccess,
  IMember,
  IModerationEntry,
  IPresence,
  IRoomInfo,
  IRoomMessage,
  IStudyLink,
  RoomsAPI
} from './api';

/** Emoji offered by the reaction picker. */
export const QUICK_REACTIONS = ['👍', '✅', '👀', '❗', '🎉', '❤️'];
const ROLES = ['member', 'moderator', 'admin'];
/** How many of the latest messages the panel shows. */
const MAX_SHOWN = 200;

export interface IRoomPanelOptions {
  api: RoomsAPI;
  /** The current user's username (resolved once the user manager is ready). */
  username: () => string;
  /** Open a path relative to the server root (a study's notebook). */
  openPath: (path: string) => Promise<unknown>;
  /** Poll interval in milliseconds. */
  pollMs?: number;
  /** Presence heartbeat interval in milliseconds. */
  heartbeatMs?: number;
}

/** Create an element with a class and optional text (set through textContent). */
function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function button(
  label: string,
  className: string,
  onClick: () => void,
  title?: string
): HTMLButtonElement {
  const b = el('button', `noctis-rooms-button ${className}`, label);
  b.type = 'button';
  if (title) {
    b.title = title;
    b.setAttribute('aria-label', title);
  }
  b.addEventListener('click', ev => {
    ev.preventDefault();
    ev.stopPropagation();
    onClick();
  });
  return b;
}

function formatTime(epochSeconds: number): string {
  if (!epochSeconds) {
    return '';
  }
  const d = new Date(epochSeconds * 1000);
  const today = new Date();
  return d.toDateString() === today.toDateString()
    ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleString([], {
        dateStyle: 'short',
        timeStyle: 'short'
      });
}

function formatAgo(epochSeconds: number): string {
  const s = Math.max(0, Date.now() / 1000 - epochSeconds);
  if (s < 60) {
    return 'seen just now';
  }
  if (s < 3600) {
    return `seen ${Math.floor(s / 60)} min ago`;
  }
  if (s < 86400) {
    return `seen ${Math.floor(s / 3600)} h ago`;
  }
  return `seen ${formatTime(epochSeconds)}`;
}

/** First line of a markdown body, for quotes (markdown left as typed). */
function firstLine(body: string): string {
  const line =
    body
      .split('\n')
      .map(l => l.trim())
      .find(l => l.length > 0 && !l.startsWith('>')) ?? '';
  return line.length > 160 ? line.slice(0, 160) + '…' : line;
}

/** The body of a reply without the leading quote the server put in front. */
function replyText(body: string): string {
  const lines = body.split('\n');
  let i = 0;
  while (i < lines.length && lines[i].startsWith('>')) {
    i++;
  }
  while (i < lines.length && lines[i].trim() === '') {
    i++;
  }
  return lines.slice(i).join('\n');
}

/** A study link may only open a relative path inside the server root. */
export function safeOpenPath(path: string | undefined): string | null {
  if (!path || typeof path !== 'string') {
    return null;
  }
  if (path.startsWith('/') || path.includes('\\') || /^[a-z]+:/i.test(path)) {
    return null;
  }
  if (path.split('/').some(part => part === '..')) {
    return null;
  }
  return path;
}

export class RoomPanel extends Widget {
  constructor(options: IRoomPanelOptions) {
    super();
    this._api = options.api;
    this._username = options.username;
    this._openPath = options.openPath;
    this._pollMs = options.pollMs ?? 3000;
    this._heartbeatMs = options.heartbeatMs ?? 15000;
    this.addClass('noctis-rooms-panel');
    this._build();
    this._observer = new IntersectionObserver(
      entries => this._onIntersect(entries),
      { root: null, threshold: 0.5 }
    );
    this._renderEmpty();
  }

  /** The room shown (a path relative to the server root), or null. */
  get path(): string | null {
    return this._path;
  }

  /** Show the room at `path` (null: no chat document is active). */
  setRoom(path: string | null): void {
    if (path === this._path) {
      return;
    }
    this._path = path;
    this._generation++;
    this._info = null;
    this._messages = [];
    this._displayNames = {};
    this._presence = null;
    this._modlog = [];
    this._replyTo = null;
    this._readIndex = -1;
    this._readSent = null;
    this._pickerFor = null;
    this._lastBeat = 0;
    this._actionError = '';
    this._pollError = '';
    this._clearMessages();
    this._renderComposer();
    if (path === null) {
      this._renderEmpty();
    } else {
      this._title.textContent = path;
      this._meta.textContent = 'Loading…';
      this._scrollPending = true;
    }
    this._renderError();
    void this.refresh();
  }

  /** Fetch the room's state now and render it. */
  async refresh(): Promise<void> {
    const path = this._path;
    const generation = this._generation;
    if (path === null || this.isDisposed) {
      return;
    }
    if (this._inFlight) {
      this._again = true;
      return;
    }
    this._inFlight = true;
    try {
      const beat = Date.now() - this._lastBeat >= this._heartbeatMs;
      const [info, view, presence] = await Promise.all([
        this._api.info(path),
        this._api.messages(path),
        beat ? this._api.heartbeat(path) : this._api.presence(path)
      ]);
      if (beat) {
        this._lastBeat = Date.now();
      }
      let modlog: IModerationEntry[] = [];
      if (info.access.moderate) {
        modlog = (await this._api.moderationLog(path)).entries;
      }
      if (generation !== this._generation) {
        return;
      }
      this._info = info;
      this._messages = view.messages.slice(-MAX_SHOWN);
      this._displayNames = view.users ?? {};
      this._presence = presence;
      this._modlog = modlog;
      this._pollError = '';
      this._render();
    } catch (err) {
      if (generation === this._generation) {
        this._pollError = `Could not load room ${path}: ${(err as Error).message}`;
        this._renderError();
      }
    } finally {
      this._inFlight = false;
      if (this._again) {
        this._again = false;
        void this.refresh();
      }
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._stopPolling();
    this._observer.disconnect();
    super.dispose();
  }

  protected onAfterShow(): void {
    this._startPolling();
    void this.refresh();
  }

  protected onAfterAttach(): void {
    if (this.isVisible) {
      this._startPolling();
    }
  }

  protected onBeforeHide(): void {
    this._stopPolling();
  }

  protected onBeforeDetach(): void {
    this._stopPolling();
  }

  // -- polling -----------------------------------------------------------------
  private _startPolling(): void {
    if (this._timer !== null) {
      return;
    }
    this._timer = window.setInterval(() => {
      if (this.isVisible && document.visibilityState !== 'hidden') {
        void this.refresh();
      }
    }, this._pollMs);
  }

  private _stopPolling(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
  }

  // -- actions -------------------------------------------------------------------
  private async _act(what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
      this._actionError = '';
    } catch (err) {
      this._actionError = `${what} failed: ${(err as Error).message}`;
    }
    this._renderError();
    await this.refresh();
  }

  private _toggleReaction(message: IRoomMessage, emoji: string): void {
    const path = this._path;
    if (path === null) {
      return;
    }
    this._pickerFor = null;
    void this._act('Reaction', () =>
      this._api.toggleReaction(path, message.id, emoji)
    );
  }

  private _startReply(message: IRoomMessage): void {
    this._replyTo = message;
    this._renderComposer();
    this._replyInput.focus();
  }

  private _sendReply(): void {
    const path = this._path;
    const target = this._replyTo;
    const text = this._replyInput.value;
    if (path === null || target === null) {
      return;
    }
    if (!text.trim()) {
      this._actionError = 'Reply failed: write some text first';
      this._renderError();
      return;
    }
    this._replySend.disabled = true;
    void this._act('Reply', async () => {
      try {
        await this._api.reply(path, target.id, text);
        this._replyTo = null;
        this._replyInput.value = '';
        this._scrollPending = true;
      } finally {
        this._replySend.disabled = false;
        this._renderComposer();
      }
    });
  }

  private async _deleteMessage(message: IRoomMessage): Promise<void> {
    const path = this._path;
    if (path === null) {
      return;
    }
    const result = await showDialog({
      title: 'Delete message',
      body: `Delete this message by ${this._name(message.sender)}? Its text is removed for everyone.`,
      buttons: [
        Dialog.cancelButton(),
        Dialog.warnButton({ label: 'Delete' })
      ]
    });
    if (result.button.accept) {
      await this._act('Delete', () => this._api.deleteMessage(path, message.id));
    }
  }

  private async _removeMember(username: string): Promise<void> {
    const path = this._path;
    if (path === null) {
      return;
    }
    const result = await showDialog({
      title: 'Remove member',
      body: `Remove ${this._name(username)} from ${path}? They lose access to the room.`,
      buttons: [
        Dialog.cancelButton(),
        Dialog.warnButton({ label: 'Remove' })
      ]
    });
    if (result.button.accept) {
      await this._act('Remove', () => this._api.remove(path, username));
    }
  }

  private _openStudy(link: IStudyLink): void {
    const target = safeOpenPath(link.open_path);
    if (target === null) {
      this._actionError = `Open study failed: ${JSON.stringify(link.open_path ?? '')} is not a path inside the server root`;
      this._renderError();
      return;
    }
    this._openPath(target).catch(err => {
      this._actionError = `Open study failed: ${(err as Error).message ?? String(err)}`;
      this._renderError();
    });
  }

  // -- read receipts ------------------------------------------------------------
  private _onIntersect(entries: IntersectionObserverEntry[]): void {
    if (!this.isVisible || document.visibilityState === 'hidden') {
      return;
    }
    let best = this._readIndex;
    for (const entry of entries) {
      if (!entry.isIntersecting) {
        continue;
      }
      const id = (entry.target as HTMLElement).dataset.messageId;
      const idx = this._messages.findIndex(m => m.id === id);
      if (idx > best) {
        best = idx;
      }
    }
    if (best > this._readIndex) {
      this._readIndex = best;
      this._sendReceipt();
    }
  }

  private _sendReceipt(): void {
    const path = this._path;
    const message = this._messages[this._readIndex];
    if (path === null || !message || message.id === this._readSent) {
      return;
    }
    this._readSent = message.id;
    const generation = this._generation;
    this._api.markRead(path, message.id).catch(err => {
      if (generation === this._generation) {
        this._readSent = null;
        this._actionError = `Read receipt failed: ${(err as Error).message}`;
        this._renderError();
      }
    });
  }

  // -- rendering ------------------------------------------------------------------
  private _name(username: string): string {
    return this._displayNames[username] || username;
  }

  private _build(): void {
    const header = el('div', 'noctis-rooms-header');
    this._title = el('h2', 'noctis-rooms-title');
    this._meta = el('div', 'noctis-rooms-meta');
    this._membership = el('div', 'noctis-rooms-membership');
    header.append(this._title, this._meta, this._membership);

    this._error = el('div', 'noctis-rooms-error');
    this._error.setAttribute('role', 'alert');
    this._errorText = el('span', 'noctis-rooms-error-text');
    this._error.append(
      this._errorText,
      button('×', 'noctis-rooms-error-dismiss', () => {
        this._actionError = '';
        this._pollError = '';
        this._renderError();
      }, 'Dismiss')
    );

    const membersSection = el('section', 'noctis-rooms-section');
    this._membersHeading = el('h3', '', 'Members');
    this._members = el('ul', 'noctis-rooms-members');
    this._invite = el('div', 'noctis-rooms-invite');
    membersSection.append(this._membersHeading, this._members, this._invite);

    const messagesSection = el(
      'section',
      'noctis-rooms-section noctis-rooms-messages-section'
    );
    messagesSection.append(el('h3', '', 'Messages'));
    this._messagesBox = el('div', 'noctis-rooms-messages');
    messagesSection.append(this._messagesBox);

    this._composer = el('div', 'noctis-rooms-composer');
    this._composerQuote = el('blockquote', 'noctis-rooms-quote');
    this._replyInput = el('textarea', 'noctis-rooms-reply-input');
    this._replyInput.rows = 2;
    this._replyInput.placeholder = 'Write a reply (Enter sends, Shift+Enter: new line)';
    this._replyInput.addEventListener('keydown', ev => {
      if (ev.key === 'Enter' && !ev.shiftKey) {
        ev.preventDefault();
        ev.stopPropagation();
        this._sendReply();
      } else if (ev.key === 'Escape') {
        this._replyTo = null;
        this._renderComposer();
      }
    });
    this._replySend = button('Send reply', 'noctis-rooms-reply-send', () =>
      this._sendReply()
    );
    const cancel = button('Cancel', 'noctis-rooms-reply-cancel', () => {
      this._replyTo = null;
      this._renderComposer();
    });
    const composerButtons = el('div', 'noctis-rooms-composer-buttons');
    composerButtons.append(this._replySend, cancel);
    this._composer.append(this._composerQuote, this._replyInput, composerButtons);

    this._modlogSection = el('details', 'noctis-rooms-section noctis-rooms-modlog');
    const summary = el('summary', '', 'Moderation log');
    this._modlogList = el('ul', 'noctis-rooms-modlog-list');
    this._modlogSection.append(summary, this._modlogList);

    this.node.append(
      header,
      this._error,
      membersSection,
      messagesSection,
      this._composer,
      this._modlogSection
    );
    this._renderComposer();
    this._renderError();
  }

  private _renderEmpty(): void {
    this._title.textContent = 'No room';
    this._meta.textContent = 'Open a .chat document to see its room here.';
    this._membership.replaceChildren();
    this._members.replaceChildren();
    this._invite.replaceChildren();
    this._membersHeading.textContent = 'Members';
    this._modlogSection.hidden = true;
  }

  private _renderError(): void {
    const text = [this._actionError, this._pollError].filter(Boolean).join(' — ');
    this._errorText.textContent = text;
    this._error.hidden = !text;
  }

  private _render(): void {
    const info = this._info;
    if (info === null) {
      return;
    }
    this._renderHeader(info);
    this._renderMembers(info);
    this._renderMessages(info.access);
    this._renderModlog(info.access);
    this._renderComposer();
    this._renderError();
  }

  private _renderHeader(info: IRoomInfo): void {
    const room = info.room;
    const access = info.access;
    this._title.textContent = room.title || room.path;
    this._title.title = room.path;
    const role = access.role ?? 'reader';
    const rights = access.write ? '' : ' (read only)';
    this._meta.textContent = `${room.kind} · ${room.visibility} · you: ${role}${rights}`;
    this._meta.dataset.kind = room.kind;
    this._meta.dataset.visibility = room.visibility;
    this._meta.dataset.role = role;
    const path = room.path;
    const children: HTMLElement[] = [];
    if (access.member) {
      children.push(
        button('Leave room', 'noctis-rooms-leave', () =>
          void this._act('Leave', () => this._api.leave(path))
        )
      );
    } else if (room.visibility !== 'private') {
      children.push(
        button('Join room', 'noctis-rooms-join', () =>
          void this._act('Join', () => this._api.join(path))
        )
      );
    }
    const me = this._username();
    const myself = info.members.find(m => m.username === me);
    if (myself?.muted) {
      children.push(el('span', 'noctis-rooms-note', 'You are muted in this room.'));
    }
    this._membership.replaceChildren(...children);
  }

  private _renderMembers(info: IRoomInfo): void {
    const presence: IPresence = this._presence ?? { online: [], last_seen: {} };
    const online = new Set(presence.online);
    const me = this._username();
    const access = info.access;
    const rows: HTMLElement[] = [];
    const listed = new Set<string>();
    const members = [...info.members].sort((a, b) => {
      const rank = (m: IMember) => (m.state === 'active' ? 0 : 1);
      return rank(a) - rank(b) || a.username.localeCompare(b.username);
    });
    const memberRow = (username: string, member: IMember | null): HTMLElement => {
      const li = el('li', 'noctis-rooms-member');
      li.dataset.username = username;
      const isOnline = online.has(username);
      li.dataset.online = String(isOnline);
      li.append(
        el('span', `noctis-rooms-dot ${isOnline ? 'noctis-rooms-online' : ''}`)
      );
      const name = el('span', 'noctis-rooms-member-name', this._name(username));
      name.title = username;
      li.append(name);
      if (member) {
        li.append(el('span', 'noctis-rooms-badge', member.role));
        if (member.state !== 'active') {
          li.append(el('span', 'noctis-rooms-badge noctis-rooms-state', member.state));
        }
        if (member.muted) {
          li.append(el('span', 'noctis-rooms-badge noctis-rooms-muted', 'muted'));
        }
      } else {
        li.append(el('span', 'noctis-rooms-badge', 'guest'));
      }
      const seen = presence.last_seen[username];
      li.append(
        el(
          'span',
          'noctis-rooms-presence',
          isOnline ? 'online' : seen ? formatAgo(seen) : 'never seen'
        )
      );
      if (member && access.moderate && username !== me && member.state === 'active') {
        const tools = el('span', 'noctis-rooms-member-tools');
        if (access.administer) {
          const select = el('select', 'noctis-rooms-role-select');
          select.title = `Role of ${username}`;
          for (const r of ROLES) {
            const opt = el('option', '', r);
            opt.value = r;
            opt.selected = r === member.role;
            select.append(opt);
          }
          select.addEventListener('change', () => {
            const path = this._path;
            if (path !== null) {
              void this._act('Role change', () =>
                this._api.setRole(path, username, select.value)
              );
            }
          });
          tools.append(select);
        }
        tools.append(
          button(
            member.muted ? 'Unmute' : 'Mute',
            'noctis-rooms-mute',
            () => {
              const path = this._path;
              if (path !== null) {
                void this._act(member.muted ? 'Unmute' : 'Mute', () =>
                  this._api.mute(path, username, !member.muted)
                );
              }
            },
            `${member.muted ? 'Unmute' : 'Mute'} ${username}`
          ),
          button(
            'Remove',
            'noctis-rooms-remove',
            () => void this._removeMember(username),
            `Remove ${username} from the room`
          )
        );
        li.append(tools);
      }
      return li;
    };
    for (const m of members) {
      listed.add(m.username);
      rows.push(memberRow(m.username, m));
    }
    for (const u of presence.online) {
      if (!listed.has(u)) {
        rows.push(memberRow(u, null));
      }
    }
    this._members.replaceChildren(...rows);
    const active = members.filter(m => m.state === 'active').length;
    this._membersHeading.textContent = `Members (${active}) · ${online.size} online`;

    if (access.moderate) {
      if (!this._inviteInput) {
        this._inviteInput = el('input', 'noctis-rooms-invite-input');
        this._inviteInput.placeholder = 'username';
        this._inviteInput.setAttribute('aria-label', 'Username to invite');
        const go = () => {
          const path = this._path;
          const name = this._inviteInput!.value.trim();
          if (path !== null && name) {
            void this._act('Invite', async () => {
              await this._api.invite(path, name);
              this._inviteInput!.value = '';
            });
          }
        };
        this._inviteInput.addEventListener('keydown', ev => {
          if (ev.key === 'Enter') {
            ev.preventDefault();
            go();
          }
        });
        this._inviteButton = button('Invite', 'noctis-rooms-invite-button', go);
      }
      if (!this._invite.firstChild) {
        this._invite.append(this._inviteInput, this._inviteButton!);
      }
    } else {
      this._invite.replaceChildren();
    }
  }

  private _clearMessages(): void {
    this._observer.disconnect();
    this._rendered.clear();
    this._messagesBox.replaceChildren();
  }

  private _renderMessages(access: IAccess): void {
    const box = this._messagesBox;
    const nearBottom =
      box.scrollHeight - box.scrollTop - box.clientHeight < 40 || this._scrollPending;
    const me = this._username();
    const byId = new Map(this._messages.map(m => [m.id, m]));
    const keep = new Set<string>();
    this._messages.forEach((m, i) => {
      keep.add(m.id);
      const original = m.reply_to ? byId.get(m.reply_to) ?? null : null;
      const signature = JSON.stringify([
        m,
        original ? [original.sender, original.body, original.deleted] : null,
        access,
        me,
        this._pickerFor === m.id,
        m.read_by.map(u => this._name(u)),
        this._name(m.sender)
      ]);
      const current = this._rendered.get(m.id);
      let node: HTMLElement;
      if (current && current.signature === signature) {
        node = current.node;
      } else {
        node = this._messageNode(m, original, access, me);
        if (current) {
          this._observer.unobserve(current.node);
          current.node.replaceWith(node);
        }
        this._rendered.set(m.id, { node, signature });
        this._observer.observe(node);
      }
      if (box.children[i] !== node) {
        box.insertBefore(node, box.children[i] ?? null);
      }
    });
    for (const [id, { node }] of [...this._rendered]) {
      if (!keep.has(id)) {
        this._observer.unobserve(node);
        node.remove();
        this._rendered.delete(id);
      }
    }
    if (this._messages.length === 0) {
      if (!box.querySelector('.noctis-rooms-empty')) {
        box.append(el('div', 'noctis-rooms-empty', 'No messages yet.'));
      }
    } else {
      box.querySelector('.noctis-rooms-empty')?.remove();
    }
    if (nearBottom) {
      box.scrollTop = box.scrollHeight;
      this._scrollPending = false;
    }
  }

  private _messageNode(
    m: IRoomMessage,
    original: IRoomMessage | null,
    access: IAccess,
    me: string
  ): HTMLElement {
    const node = el('div', 'noctis-rooms-message');
    node.dataset.messageId = m.id;
    node.dataset.sender = m.sender;
    if (m.sender === me) {
      node.classList.add('noctis-rooms-mine');
    }
    const head = el('div', 'noctis-rooms-message-head');
    head.append(
      el('span', 'noctis-rooms-sender', this._name(m.sender)),
      el('span', 'noctis-rooms-time', formatTime(m.time))
    );
    if (m.edited && !m.deleted) {
      head.append(el('span', 'noctis-rooms-edited', '(edited)'));
    }
    node.append(head);

    if (m.deleted) {
      node.classList.add('noctis-rooms-deleted');
      node.append(el('div', 'noctis-rooms-body', '(message deleted)'));
      return node;
    }
    let body = m.body ?? '';
    if (m.reply_to) {
      const quote = el('blockquote', 'noctis-rooms-quote');
      quote.dataset.replyTo = m.reply_to;
      if (original) {
        quote.append(
          el('strong', '', `${this._name(original.sender)}: `),
          document.createTextNode(
            original.deleted ? '(message deleted)' : firstLine(original.body ?? '')
          )
        );
      } else {
        quote.textContent = 'In reply to an earlier message';
      }
      node.append(quote);
      body = replyText(body);
    }
    if (m.study_link) {
      // the card below shows the link; keep only the text before the markdown card
      const cut = body.indexOf('\n\n**Study:**');
      if (cut >= 0) {
        body = body.slice(0, cut);
      }
    }
    node.append(el('div', 'noctis-rooms-body', body));
    if (m.study_link) {
      node.append(this._studyCard(m.study_link));
    }

    const reactions = el('div', 'noctis-rooms-reactions');
    for (const [emoji, users] of Object.entries(m.reactions)) {
      if (!users.length) {
        continue;
      }
      const mine = users.includes(me);
      const chip = button(
        `${emoji} ${users.length}`,
        `noctis-rooms-reaction${mine ? ' noctis-rooms-reaction-mine' : ''}`,
        () => this._toggleReaction(m, emoji),
        `${emoji} by ${users.map(u => this._name(u)).join(', ')}${access.write ? (mine ? ' — click to remove yours' : ' — click to add yours') : ''}`
      );
      chip.dataset.emoji = emoji;
      chip.dataset.users = users.join(',');
      chip.setAttribute('aria-pressed', String(mine));
      chip.disabled = !access.write;
      reactions.append(chip);
    }
    node.append(reactions);

    const actions = el('div', 'noctis-rooms-actions');
    if (access.write) {
      actions.append(
        button('☺+', 'noctis-rooms-react-add', () => {
          this._pickerFor = this._pickerFor === m.id ? null : m.id;
          this._renderMessages(access);
        }, 'Add a reaction'),
        button('Reply', 'noctis-rooms-reply', () => this._startReply(m), 'Reply with a quote')
      );
    }
    if (m.sender === me || access.moderate) {
      actions.append(
        button('Delete', 'noctis-rooms-delete', () => void this._deleteMessage(m), 'Delete this message')
      );
    }
    node.append(actions);
    if (this._pickerFor === m.id && access.write) {
      const picker = el('div', 'noctis-rooms-picker');
      for (const emoji of QUICK_REACTIONS) {
        const b = button(emoji, 'noctis-rooms-pick', () => this._toggleReaction(m, emoji), `React with ${emoji}`);
        b.dataset.emoji = emoji;
        picker.append(b);
      }
      node.append(picker);
    }
    if (m.read_by.length) {
      const seen = el(
        'div',
        'noctis-rooms-receipt',
        `Seen by ${m.read_by.map(u => this._name(u)).join(', ')}`
      );
      seen.dataset.readBy = m.read_by.join(',');
      node.append(seen);
    }
    return node;
  }

  private _studyCard(link: IStudyLink): HTMLElement {
    const card = el('div', 'noctis-rooms-card');
    card.append(el('div', 'noctis-rooms-card-title', link.description || 'Study'));
    card.append(el('div', 'noctis-rooms-card-uid', `Study UID ${link.study_uid}`));
    if (link.series_uid) {
      card.append(el('div', 'noctis-rooms-card-uid', `Series UID ${link.series_uid}`));
    }
    const target = safeOpenPath(link.open_path);
    if (target !== null) {
      const open = button('Open study', 'noctis-rooms-open-study', () => this._openStudy(link), `Open ${target}`);
      open.dataset.path = target;
      card.append(open);
    }
    return card;
  }

  private _renderModlog(access: IAccess): void {
    this._modlogSection.hidden = !access.moderate;
    if (!access.moderate) {
      this._modlogList.replaceChildren();
      return;
    }
    const rows = [...this._modlog].reverse().map(e => {
      const li = el('li', 'noctis-rooms-modlog-entry');
      li.dataset.action = e.action;
      const what = [e.action, e.target_user ? `→ ${e.target_user}` : '', e.detail ?? '']
        .filter(Boolean)
        .join(' ');
      li.append(
        el('span', 'noctis-rooms-time', formatTime(e.time)),
        el('span', 'noctis-rooms-modlog-actor', this._name(e.actor)),
        el('span', 'noctis-rooms-modlog-what', what)
      );
      return li;
    });
    if (rows.length === 0) {
      rows.push(el('li', 'noctis-rooms-empty', 'No moderation actions yet.'));
    }
    this._modlogList.replaceChildren(...rows);
  }

  private _renderComposer(): void {
    const target = this._replyTo;
    const canWrite = this._info?.access.write ?? false;
    this._composer.hidden = target === null || !canWrite;
    this._composerQuote.replaceChildren();
    if (target !== null) {
      this._composerQuote.append(
        el('strong', '', `Replying to ${this._name(target.sender)}: `),
        document.createTextNode(firstLine(target.body ?? ''))
      );
    }
  }

  private _api: RoomsAPI;
  private _username: () => string;
  private _openPath: (path: string) => Promise<unknown>;
  private _pollMs: number;
  private _heartbeatMs: number;
  private _path: string | null = null;
  private _generation = 0;
  private _info: IRoomInfo | null = null;
  private _messages: IRoomMessage[] = [];
  private _displayNames: { [username: string]: string } = {};
  private _presence: IPresence | null = null;
  private _modlog: IModerationEntry[] = [];
  private _replyTo: IRoomMessage | null = null;
  private _pickerFor: string | null = null;
  private _readIndex = -1;
  private _readSent: string | null = null;
  private _lastBeat = 0;
  private _timer: number | null = null;
  private _inFlight = false;
  private _again = false;
  private _scrollPending = false;
  private _actionError = '';
  private _pollError = '';
  private _observer: IntersectionObserver;
  private _rendered = new Map<string, { node: HTMLElement; signature: string }>();
  private _title!: HTMLHeadingElement;
  private _meta!: HTMLDivElement;
  private _membership!: HTMLDivElement;
  private _error!: HTMLDivElement;
  private _errorText!: HTMLSpanElement;
  private _membersHeading!: HTMLHeadingElement;
  private _members!: HTMLUListElement;
  private _invite!: HTMLDivElement;
  private _inviteInput: HTMLInputElement | null = null;
  private _inviteButton: HTMLButtonElement | null = null;
  private _messagesBox!: HTMLDivElement;
  private _composer!: HTMLDivElement;
  private _composerQuote!: HTMLQuoteElement;
  private _replyInput!: HTMLTextAreaElement;
  private _replySend!: HTMLButtonElement;
  private _modlogSection!: HTMLDetailsElement;
  private _modlogList!: HTMLUListElement;
}
