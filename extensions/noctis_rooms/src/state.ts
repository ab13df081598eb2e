/**
 * One room's state as the Noctis rooms REST API gives it (room, access, members,
 * messages with reactions, replies and read receipts, presence, moderation log),
 * shared by the Room panel and the message decorations in the chat view, so both
 * show the same thing.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';

import {
  IModerationEntry,
  IPresence,
  IRoomInfo,
  IRoomMessage,
  RoomsAPI
} from './api';

type Listener = () => void;

export interface IRoomStateOptions {
  api: RoomsAPI;
  /** The current user's username. */
  username: () => string;
  /** Poll interval in milliseconds. */
  pollMs?: number;
  /** Presence heartbeat interval in milliseconds. */
  heartbeatMs?: number;
}

/** The state of the room at one path; polls while someone listens. */
export class RoomState {
  constructor(
    readonly path: string,
    private readonly _options: IRoomStateOptions
  ) {
    this._observer = new IntersectionObserver(
      entries => this._onIntersect(entries),
      { root: null, threshold: 0.5 }
    );
  }

  get api(): RoomsAPI {
    return this._options.api;
  }
  get me(): string {
    return this._options.username();
  }
  get info(): IRoomInfo | null {
    return this._info;
  }
  get messages(): IRoomMessage[] {
    return this._messages;
  }
  get presence(): IPresence | null {
    return this._presence;
  }
  get modlog(): IModerationEntry[] {
    return this._modlog;
  }
  get error(): string {
    return [this.actionError, this._pollError].filter(Boolean).join(' — ');
  }

  /** The message with this id, as the server last described it. */
  message(id: string): IRoomMessage | null {
    return this._byId.get(id) ?? null;
  }

  /** The display name of a user. */
  name(username: string): string {
    return this._displayNames[username] || username;
  }

  /** Call `fn` on every change; returns the function that stops it. */
  subscribe(fn: Listener): () => void {
    this._listeners.add(fn);
    this._startPolling();
    if (this._info === null) {
      void this.refresh();
    }
    return () => {
      this._listeners.delete(fn);
      if (this._listeners.size === 0) {
        this._stopPolling();
      }
    };
  }

  /** Tell every listener (after a change made here, e.g. the reaction picker). */
  changed(): void {
    for (const fn of [...this._listeners]) {
      fn();
    }
  }

  /** Fetch the room now. */
  async refresh(): Promise<void> {
    if (this._inFlight) {
      this._again = true;
      return;
    }
    this._inFlight = true;
    const api = this.api;
    try {
      const beat = Date.now() - this._lastBeat >= (this._options.heartbeatMs ?? 15000);
      const [info, view, presence] = await Promise.all([
        api.info(this.path),
        api.messages(this.path),
        beat ? api.heartbeat(this.path) : api.presence(this.path)
      ]);
      if (beat) {
        this._lastBeat = Date.now();
      }
      this._modlog = info.access.moderate
        ? (await api.moderationLog(this.path)).entries
        : [];
      this._info = info;
      this._messages = view.messages;
      this._byId = new Map(view.messages.map(m => [m.id, m]));
      this._displayNames = view.users ?? {};
      this._presence = presence;
      this._pollError = '';
    } catch (err) {
      this._pollError = `Could not load room ${this.path}: ${(err as Error).message}`;
    } finally {
      this._inFlight = false;
    }
    this.changed();
    if (this._again) {
      this._again = false;
      void this.refresh();
    }
  }

  /** Run an action, keep its error for the panel, and refresh. */
  async act(what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
      this.actionError = '';
    } catch (err) {
      this.actionError = `${what} failed: ${(err as Error).message}`;
    }
    await this.refresh();
  }

  clearErrors(): void {
    this.actionError = '';
    this._pollError = '';
    this.changed();
  }

  toggleReaction(messageId: string, emoji: string): void {
    this.pickerFor = null;
    void this.act('Reaction', () => this.api.toggleReaction(this.path, messageId, emoji));
  }

  async reply(messageId: string, text: string): Promise<void> {
    if (!text.trim()) {
      this.actionError = 'Reply failed: write some text first';
      this.changed();
      return;
    }
    await this.act('Reply', async () => {
      await this.api.reply(this.path, messageId, text);
      this.replyTo = null;
    });
  }

  async deleteMessage(message: IRoomMessage): Promise<void> {
    const result = await showDialog({
      title: 'Delete message',
      body: `Delete this message by ${this.name(message.sender)}? Its text is removed for everyone.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (result.button.accept) {
      await this.act('Delete', () => this.api.deleteMessage(this.path, message.id));
    }
  }

  /** Count `node` (showing message `id`) as read once it is on screen. */
  watchRead(node: HTMLElement, id: string): void {
    node.dataset.messageId = id;
    this._observer.observe(node);
  }

  unwatchRead(node: HTMLElement): void {
    this._observer.unobserve(node);
  }

  private _onIntersect(entries: IntersectionObserverEntry[]): void {
    if (document.visibilityState === 'hidden') {
      return;
    }
    let best = this._readIndex;
    for (const entry of entries) {
      if (!entry.isIntersecting) {
        continue;
      }
      const id = (entry.target as HTMLElement).dataset.messageId;
      const idx = this._messages.findIndex(m => m.id === id);
      best = Math.max(best, idx);
    }
    const message = this._messages[best];
    if (best > this._readIndex && message && message.id !== this._readSent) {
      this._readIndex = best;
      this._readSent = message.id;
      this.api.markRead(this.path, message.id).catch(err => {
        this._readSent = null;
        this.actionError = `Read receipt failed: ${(err as Error).message}`;
        this.changed();
      });
    }
  }

  private _startPolling(): void {
    if (this._timer === null) {
      this._timer = window.setInterval(() => {
        if (document.visibilityState !== 'hidden') {
          void this.refresh();
        }
      }, this._options.pollMs ?? 3000);
    }
  }

  private _stopPolling(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
  }

  /** The message whose reaction picker is open. */
  pickerFor: string | null = null;
  /** The message being replied to. */
  replyTo: string | null = null;
  actionError = '';
  private _pollError = '';
  private _info: IRoomInfo | null = null;
  private _messages: IRoomMessage[] = [];
  private _byId = new Map<string, IRoomMessage>();
  private _displayNames: { [username: string]: string } = {};
  private _presence: IPresence | null = null;
  private _modlog: IModerationEntry[] = [];
  private _listeners = new Set<Listener>();
  private _timer: number | null = null;
  private _inFlight = false;
  private _again = false;
  private _lastBeat = 0;
  private _readIndex = -1;
  private _readSent: string | null = null;
  private _observer: IntersectionObserver;
}

/** One {@link RoomState} per room path. */
export class RoomStates {
  constructor(private readonly _options: IRoomStateOptions) {}

  get(path: string): RoomState {
    let state = this._states.get(path);
    if (state === undefined) {
      state = new RoomState(path, this._options);
      this._states.set(path, state);
    }
    return state;
  }

  private _states = new Map<string, RoomState>();
}
