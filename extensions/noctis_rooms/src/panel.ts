/**
 * The "Room" side panel: the room of the active `.chat` document (its header,
 * members with presence and moderation, the moderation log, errors). The messages,
 * with their reactions, replies and read receipts, are in the chat view itself
 * (see `messageView.ts`): there is one message list.
 *
 * All user text is put in the DOM with `textContent`; no HTML from the server or from
 * users is ever parsed.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { IMember, IPresence } from './api';
import { button, el, formatAgo, formatTime } from './dom';
import { RoomState, RoomStates } from './state';

export { safeOpenPath } from './dom';
export { QUICK_REACTIONS } from './messageView';

const ROLES = ['member', 'moderator', 'admin'];

export interface IRoomPanelOptions {
  rooms: RoomStates;
}

/** Title, kind, visibility, the user's role, join/leave. */
export class RoomHeader {
  readonly node = el('div', 'noctis-rooms-header');

  constructor() {
    this.node.append(this._title, this._meta, this._membership);
  }

  empty(): void {
    this._title.textContent = 'No room';
    this._meta.textContent = 'Open a .chat document to see its room here.';
    this._membership.replaceChildren();
  }

  loading(path: string): void {
    this._title.textContent = path;
    this._meta.textContent = 'Loading…';
    this._membership.replaceChildren();
  }

  render(state: RoomState): void {
    const info = state.info;
    if (info === null) {
      return;
    }
    const { room, access } = info;
    this._title.textContent = room.title || room.path;
    this._title.title = room.path;
    const role = access.role ?? 'reader';
    const rights = access.write ? '' : ' (read only)';
    this._meta.textContent = `${room.kind} · ${room.visibility} · you: ${role}${rights}`;
    this._meta.dataset.kind = room.kind;
    this._meta.dataset.visibility = room.visibility;
    this._meta.dataset.role = role;
    const children: HTMLElement[] = [];
    if (access.member) {
      children.push(
        button('Leave room', 'noctis-rooms-leave', () =>
          void state.act('Leave', () => state.api.leave(state.path))
        )
      );
    } else if (room.visibility !== 'private') {
      children.push(
        button('Join room', 'noctis-rooms-join', () =>
          void state.act('Join', () => state.api.join(state.path))
        )
      );
    }
    if (info.members.find(m => m.username === state.me)?.muted) {
      children.push(el('span', 'noctis-rooms-note', 'You are muted in this room.'));
    }
    this._membership.replaceChildren(...children);
  }

  private _title = el('h2', 'noctis-rooms-title');
  private _meta = el('div', 'noctis-rooms-meta');
  private _membership = el('div', 'noctis-rooms-membership');
}

/** The last error of an action or of loading the room, dismissable. */
export class ErrorBar {
  readonly node = el('div', 'noctis-rooms-error');

  constructor(onDismiss: () => void) {
    this.node.setAttribute('role', 'alert');
    this.node.append(
      this._text,
      button('×', 'noctis-rooms-error-dismiss', onDismiss, 'Dismiss')
    );
    this.node.hidden = true;
  }

  render(text: string): void {
    this._text.textContent = text;
    this.node.hidden = !text;
  }

  private _text = el('span', 'noctis-rooms-error-text');
}

/** Members with presence; moderators mute, remove, invite; admins set roles. */
export class MemberList {
  readonly node = el('section', 'noctis-rooms-section');

  constructor() {
    this.node.append(this._heading, this._list, this._invite);
  }

  empty(): void {
    this._heading.textContent = 'Members';
    this._list.replaceChildren();
    this._invite.replaceChildren();
  }

  render(state: RoomState): void {
    const info = state.info;
    if (info === null) {
      return;
    }
    const presence: IPresence = state.presence ?? { online: [], last_seen: {} };
    const online = new Set(presence.online);
    const members = [...info.members].sort((a, b) => {
      const rank = (m: IMember) => (m.state === 'active' ? 0 : 1);
      return rank(a) - rank(b) || a.username.localeCompare(b.username);
    });
    const listed = new Set(members.map(m => m.username));
    const rows = members.map(m => this._row(state, m.username, m, online, presence));
    for (const u of presence.online) {
      if (!listed.has(u)) {
        rows.push(this._row(state, u, null, online, presence));
      }
    }
    this._list.replaceChildren(...rows);
    const active = members.filter(m => m.state === 'active').length;
    this._heading.textContent = `Members (${active}) · ${online.size} online`;
    this._renderInvite(state);
  }

  private _row(
    state: RoomState,
    username: string,
    member: IMember | null,
    online: Set<string>,
    presence: IPresence
  ): HTMLElement {
    const li = el('li', 'noctis-rooms-member');
    li.dataset.username = username;
    const isOnline = online.has(username);
    li.dataset.online = String(isOnline);
    li.append(el('span', `noctis-rooms-dot ${isOnline ? 'noctis-rooms-online' : ''}`));
    const name = el('span', 'noctis-rooms-member-name', state.name(username));
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
    const access = state.info?.access;
    if (member && access?.moderate && username !== state.me && member.state === 'active') {
      li.append(this._tools(state, member, access.administer));
    }
    return li;
  }

  private _tools(state: RoomState, member: IMember, administer: boolean): HTMLElement {
    const username = member.username;
    const tools = el('span', 'noctis-rooms-member-tools');
    if (administer) {
      const select = el('select', 'noctis-rooms-role-select');
      select.title = `Role of ${username}`;
      for (const r of ROLES) {
        const opt = el('option', '', r);
        opt.value = r;
        opt.selected = r === member.role;
        select.append(opt);
      }
      select.addEventListener('change', () => {
        void state.act('Role change', () =>
          state.api.setRole(state.path, username, select.value)
        );
      });
      tools.append(select);
    }
    const verb = member.muted ? 'Unmute' : 'Mute';
    tools.append(
      button(
        verb,
        'noctis-rooms-mute',
        () =>
          void state.act(verb, () => state.api.mute(state.path, username, !member.muted)),
        `${verb} ${username}`
      ),
      button(
        'Remove',
        'noctis-rooms-remove',
        () => void this._remove(state, username),
        `Remove ${username} from the room`
      )
    );
    return tools;
  }

  private async _remove(state: RoomState, username: string): Promise<void> {
    const result = await showDialog({
      title: 'Remove member',
      body: `Remove ${state.name(username)} from ${state.path}? They lose access to the room.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Remove' })]
    });
    if (result.button.accept) {
      await state.act('Remove', () => state.api.remove(state.path, username));
    }
  }

  private _renderInvite(state: RoomState): void {
    if (!state.info?.access.moderate) {
      this._invite.replaceChildren();
      return;
    }
    this._inviteState = state;
    if (!this._invite.firstChild) {
      this._invite.append(this._inviteInput, this._inviteButton);
    }
  }

  private _sendInvite(): void {
    const state = this._inviteState;
    const name = this._inviteInput.value.trim();
    if (state !== null && name) {
      void state.act('Invite', async () => {
        await state.api.invite(state.path, name);
        this._inviteInput.value = '';
      });
    }
  }

  private _heading = el('h3', '', 'Members');
  private _list = el('ul', 'noctis-rooms-members');
  private _invite = el('div', 'noctis-rooms-invite');
  private _inviteState: RoomState | null = null;
  private _inviteInput = (() => {
    const input = el('input', 'noctis-rooms-invite-input');
    input.placeholder = 'username';
    input.setAttribute('aria-label', 'Username to invite');
    input.addEventListener('keydown', ev => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        this._sendInvite();
      }
    });
    return input;
  })();
  private _inviteButton = button('Invite', 'noctis-rooms-invite-button', () =>
    this._sendInvite()
  );
}

/** The moderation log (moderators only). */
export class ModerationLog {
  readonly node = el('details', 'noctis-rooms-section noctis-rooms-modlog');

  constructor() {
    this.node.append(el('summary', '', 'Moderation log'), this._list);
    this.node.hidden = true;
  }

  render(state: RoomState | null): void {
    const moderate = state?.info?.access.moderate ?? false;
    this.node.hidden = !moderate;
    if (state === null || !moderate) {
      this._list.replaceChildren();
      return;
    }
    const rows = [...state.modlog].reverse().map(e => {
      const li = el('li', 'noctis-rooms-modlog-entry');
      li.dataset.action = e.action;
      const what = [e.action, e.target_user ? `→ ${e.target_user}` : '', e.detail ?? '']
        .filter(Boolean)
        .join(' ');
      li.append(
        el('span', 'noctis-rooms-time', formatTime(e.time)),
        el('span', 'noctis-rooms-modlog-actor', state.name(e.actor)),
        el('span', 'noctis-rooms-modlog-what', what)
      );
      return li;
    });
    if (rows.length === 0) {
      rows.push(el('li', 'noctis-rooms-empty', 'No moderation actions yet.'));
    }
    this._list.replaceChildren(...rows);
  }

  private _list = el('ul', 'noctis-rooms-modlog-list');
}

/** The side panel: a {@link RoomHeader}, an {@link ErrorBar}, a {@link MemberList}
 * and a {@link ModerationLog} for the room of the active chat. */
export class RoomPanel extends Widget {
  constructor(options: IRoomPanelOptions) {
    super();
    this._rooms = options.rooms;
    this.addClass('noctis-rooms-panel');
    this._errors = new ErrorBar(() => this._state?.clearErrors());
    const hint = el(
      'div',
      'noctis-rooms-hint',
      'Messages, reactions, replies and read receipts are in the chat itself.'
    );
    this.node.append(
      this._header.node,
      this._errors.node,
      this._members.node,
      hint,
      this._modlog.node
    );
    this._render();
  }

  /** The room shown (a path relative to the server root), or null. */
  get path(): string | null {
    return this._state?.path ?? null;
  }

  /** Show the room at `path` (null: no chat document is active). */
  setRoom(path: string | null): void {
    if (path === this.path) {
      return;
    }
    this._stop?.();
    this._stop = null;
    this._state = path === null ? null : this._rooms.get(path);
    if (this._state !== null) {
      this._header.loading(this._state.path);
      if (this.isVisible) {
        this._listen();
      }
      void this._state.refresh();
    }
    this._render();
  }

  /** Fetch the room's state now. */
  async refresh(): Promise<void> {
    await this._state?.refresh();
  }

  dispose(): void {
    this._stop?.();
    this._stop = null;
    super.dispose();
  }

  protected onAfterShow(): void {
    this._listen();
    void this.refresh();
  }

  protected onBeforeHide(): void {
    this._stop?.();
    this._stop = null;
  }

  private _listen(): void {
    if (this._state !== null && this._stop === null) {
      this._stop = this._state.subscribe(() => this._render());
    }
  }

  private _render(): void {
    const state = this._state;
    if (state === null) {
      this._header.empty();
      this._members.empty();
      this._errors.render('');
      this._modlog.render(null);
      return;
    }
    this._header.render(state);
    this._members.render(state);
    this._modlog.render(state);
    this._errors.render(state.error);
  }

  private _rooms: RoomStates;
  private _state: RoomState | null = null;
  private _stop: (() => void) | null = null;
  private _header = new RoomHeader();
  private _errors: ErrorBar;
  private _members = new MemberList();
  private _modlog = new ModerationLog();
}
