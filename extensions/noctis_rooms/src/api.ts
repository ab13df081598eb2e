/**
 * Typed client of the Noctis rooms REST API (`/api/noctis/rooms/...`).
 *
 * Requests go through `ServerConnection.makeRequest`, which adds the token and the
 * XSRF header. Failures raise `RoomsAPIError` carrying the server's message.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export interface IAccess {
  read: boolean;
  write: boolean;
  moderate: boolean;
  administer: boolean;
  role: string | null;
  member: boolean;
}

export interface IRoom {
  path: string;
  kind: string;
  visibility: string;
  title: string;
  created_by: string;
  created_at: number;
}

export interface IMember {
  path: string;
  username: string;
  role: string;
  state: string;
  muted: boolean;
  since: number;
}

export interface IRoomInfo {
  room: IRoom;
  access: IAccess;
  members: IMember[];
}

export interface IStudyLink {
  study_uid: string;
  description?: string;
  series_uid?: string;
  open_path?: string;
}

export interface IRoomMessage {
  id: string;
  sender: string;
  body: string;
  time: number;
  deleted: boolean;
  edited: boolean;
  reply_to: string | null;
  study_link: IStudyLink | null;
  /** emoji -> usernames */
  reactions: { [emoji: string]: string[] };
  /** usernames (other than the sender) who have read up to this message */
  read_by: string[];
}

export interface IMessagesView {
  messages: IRoomMessage[];
  /** username -> display name */
  users: { [username: string]: string };
}

export interface IPresence {
  online: string[];
  /** username -> epoch seconds */
  last_seen: { [username: string]: number };
}

export interface IModerationEntry {
  seq: number;
  time: number;
  path: string;
  actor: string;
  action: string;
  target_user: string | null;
  message_id: string | null;
  detail: string | null;
}

export interface IReactionResult {
  message_id: string;
  reactions: { [emoji: string]: string[] };
  mine: string[];
}

/** An API call failed: `status` is the HTTP status (0 for a network failure). */
export class RoomsAPIError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
    this.name = 'RoomsAPIError';
  }
}

/** Encode a room path segment by segment (keeps the slashes). */
function encodePath(path: string): string {
  return path
    .split('/')
    .map(part => encodeURIComponent(part))
    .join('/');
}

export class RoomsAPI {
  constructor(settings?: ServerConnection.ISettings) {
    this._settings = settings ?? ServerConnection.makeSettings();
  }

  info(path: string): Promise<IRoomInfo> {
    return this._call('GET', 'info', path);
  }

  messages(path: string): Promise<IMessagesView> {
    return this._call('GET', 'messages', path);
  }

  presence(path: string): Promise<IPresence> {
    return this._call('GET', 'presence', path);
  }

  /** Heartbeat: updates the user's last-seen time and returns the presence. */
  heartbeat(path: string): Promise<IPresence> {
    return this._call('POST', 'presence', path, {});
  }

  moderationLog(path: string): Promise<{ entries: IModerationEntry[] }> {
    return this._call('GET', 'modlog', path);
  }

  toggleReaction(
    path: string,
    messageId: string,
    emoji: string
  ): Promise<IReactionResult> {
    return this._call('POST', 'reactions', path, {
      message_id: messageId,
      emoji
    });
  }

  markRead(path: string, messageId: string): Promise<{ read: string }> {
    return this._call('POST', 'receipts', path, { message_id: messageId });
  }

  reply(path: string, replyTo: string, text: string): Promise<{ id: string }> {
    return this._call('POST', 'reply', path, { reply_to: replyTo, text });
  }

  deleteMessage(path: string, messageId: string): Promise<{ deleted: string }> {
    return this._call('POST', 'delete-message', path, {
      message_id: messageId
    });
  }

  join(path: string): Promise<{ member: IMember }> {
    return this._call('POST', 'join', path, {});
  }

  leave(path: string): Promise<{ left: boolean }> {
    return this._call('POST', 'leave', path, {});
  }

  invite(path: string, username: string): Promise<{ member: IMember }> {
    return this._call('POST', 'invite', path, { username });
  }

  setRole(
    path: string,
    username: string,
    role: string
  ): Promise<{ member: IMember }> {
    return this._call('POST', 'role', path, { username, role });
  }

  mute(
    path: string,
    username: string,
    muted: boolean
  ): Promise<{ member: IMember }> {
    return this._call('POST', 'mute', path, { username, muted });
  }

  remove(path: string, username: string): Promise<{ member: IMember }> {
    return this._call('POST', 'remove', path, { username });
  }

  private async _call<T>(
    method: string,
    action: string,
    path: string,
    body?: unknown
  ): Promise<T> {
    const url = URLExt.join(
      this._settings.baseUrl,
      'api/noctis/rooms',
      action,
      encodePath(path)
    );
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this._settings);
    } catch (err) {
      throw new RoomsAPIError(
        `${action}: the server could not be reached (${String(err)})`,
        0
      );
    }
    const text = await response.text();
    let data: any = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const reason =
        data && typeof data.message === 'string' && data.message
          ? data.message
          : response.statusText || 'request failed';
      throw new RoomsAPIError(
        `${action} (${response.status}): ${reason}`,
        response.status
      );
    }
    return data as T;
  }

  private _settings: ServerConnection.ISettings;
}
