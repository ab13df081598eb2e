/**
 * Reactions, replies, read receipts, study cards and moderation inside the chat view
 * itself: one message list (jupyterlab-chat's), decorated under each message through
 * @jupyter/chat's message footer and preamble registries.
 */
import * as React from 'react';

import { IRoomMessage, IStudyLink } from './api';
import { button, el, firstLine, safeOpenPath } from './dom';
import { RoomState, RoomStates } from './state';

/** Emoji offered by the reaction picker. */
export const QUICK_REACTIONS = ['👍', '✅', '👀', '❗', '🎉', '❤️'];

/** What the chat view gives a footer or preamble component. */
export interface IDecorationProps {
  message: { id?: string };
  model: { name?: string };
}

export interface IDecorationOptions {
  rooms: RoomStates;
  /** Open a path relative to the server root (a study's notebook). */
  openPath: (path: string) => Promise<unknown>;
}

/** The "In reply to" line above a reply's text. */
export function replyLine(state: RoomState, m: IRoomMessage): HTMLElement[] {
  if (!m.reply_to) {
    return [];
  }
  const original = state.message(m.reply_to);
  const quote = el('blockquote', 'noctis-rooms-quote');
  quote.dataset.replyTo = m.reply_to;
  if (original) {
    quote.append(
      el('strong', '', `${state.name(original.sender)}: `),
      document.createTextNode(
        original.deleted ? '(message deleted)' : firstLine(original.body ?? '')
      )
    );
  } else {
    quote.textContent = 'In reply to an earlier message';
  }
  return [quote];
}

function reactionChips(state: RoomState, m: IRoomMessage): HTMLElement {
  const me = state.me;
  const canWrite = state.info?.access.write ?? false;
  const box = el('div', 'noctis-rooms-reactions');
  for (const [emoji, users] of Object.entries(m.reactions)) {
    if (!users.length) {
      continue;
    }
    const mine = users.includes(me);
    const names = users.map(u => state.name(u)).join(', ');
    const hint = canWrite ? (mine ? ' — click to remove yours' : ' — click to add yours') : '';
    const chip = button(
      `${emoji} ${users.length}`,
      `noctis-rooms-reaction${mine ? ' noctis-rooms-reaction-mine' : ''}`,
      () => state.toggleReaction(m.id, emoji),
      `${emoji} by ${names}${hint}`
    );
    chip.dataset.emoji = emoji;
    chip.dataset.users = users.join(',');
    chip.setAttribute('aria-pressed', String(mine));
    chip.disabled = !canWrite;
    box.append(chip);
  }
  return box;
}

function actionButtons(state: RoomState, m: IRoomMessage): HTMLElement {
  const access = state.info?.access;
  const actions = el('div', 'noctis-rooms-actions');
  if (access?.write) {
    actions.append(
      button(
        '☺+',
        'noctis-rooms-react-add',
        () => {
          state.pickerFor = state.pickerFor === m.id ? null : m.id;
          state.changed();
        },
        'Add a reaction'
      ),
      button(
        'Reply',
        'noctis-rooms-reply',
        () => {
          state.replyTo = m.id;
          state.changed();
        },
        'Reply with a quote'
      )
    );
  }
  if (m.sender === state.me || access?.moderate) {
    actions.append(
      button(
        'Delete',
        'noctis-rooms-delete',
        () => void state.deleteMessage(m),
        'Delete this message'
      )
    );
  }
  return actions;
}

function picker(state: RoomState, m: IRoomMessage): HTMLElement {
  const box = el('div', 'noctis-rooms-picker');
  for (const emoji of QUICK_REACTIONS) {
    const b = button(
      emoji,
      'noctis-rooms-pick',
      () => state.toggleReaction(m.id, emoji),
      `React with ${emoji}`
    );
    b.dataset.emoji = emoji;
    box.append(b);
  }
  return box;
}

/** The reply box under the message being answered. */
function replyComposer(state: RoomState, m: IRoomMessage): HTMLElement {
  const box = el('div', 'noctis-rooms-composer');
  const quote = el('blockquote', 'noctis-rooms-quote');
  quote.append(
    el('strong', '', `Replying to ${state.name(m.sender)}: `),
    document.createTextNode(firstLine(m.body ?? ''))
  );
  const input = el('textarea', 'noctis-rooms-reply-input');
  input.rows = 2;
  input.placeholder = 'Write a reply (Enter sends, Shift+Enter: new line)';
  const send = (): void => {
    send_.disabled = true;
    void state.reply(m.id, input.value).finally(() => {
      send_.disabled = false;
    });
  };
  const cancel = (): void => {
    state.replyTo = null;
    state.changed();
  };
  input.addEventListener('keydown', ev => {
    ev.stopPropagation(); // not the chat input's shortcuts
    if (ev.key === 'Enter' && !ev.shiftKey) {
      ev.preventDefault();
      send();
    } else if (ev.key === 'Escape') {
      cancel();
    }
  });
  const send_ = button('Send reply', 'noctis-rooms-reply-send', send);
  const buttons = el('div', 'noctis-rooms-composer-buttons');
  buttons.append(send_, button('Cancel', 'noctis-rooms-reply-cancel', cancel));
  box.append(quote, input, buttons);
  window.setTimeout(() => input.focus(), 0);
  return box;
}

function studyCard(link: IStudyLink, openPath: (path: string) => void): HTMLElement {
  const card = el('div', 'noctis-rooms-card');
  card.append(el('div', 'noctis-rooms-card-title', link.description || 'Study'));
  card.append(el('div', 'noctis-rooms-card-uid', `Study UID ${link.study_uid}`));
  if (link.series_uid) {
    card.append(el('div', 'noctis-rooms-card-uid', `Series UID ${link.series_uid}`));
  }
  const target = safeOpenPath(link.open_path);
  if (target !== null) {
    const open = button('Open study', 'noctis-rooms-open-study', () => openPath(target), `Open ${target}`);
    open.dataset.path = target;
    card.append(open);
  }
  return card;
}

/** Everything shown under a message in the chat view. */
export function messageFooter(
  state: RoomState,
  m: IRoomMessage,
  openPath: (path: string) => void
): HTMLElement[] {
  if (m.deleted) {
    return [];
  }
  const parts: HTMLElement[] = [];
  if (m.study_link) {
    parts.push(studyCard(m.study_link, openPath));
  }
  parts.push(reactionChips(state, m), actionButtons(state, m));
  if (state.pickerFor === m.id && state.info?.access.write) {
    parts.push(picker(state, m));
  }
  if (state.replyTo === m.id && state.info?.access.write) {
    parts.push(replyComposer(state, m));
  }
  if (m.read_by.length) {
    const seen = el(
      'div',
      'noctis-rooms-receipt',
      `Seen by ${m.read_by.map(u => state.name(u)).join(', ')}`
    );
    seen.dataset.readBy = m.read_by.join(',');
    parts.push(seen);
  }
  return parts;
}

/**
 * A React component that fills its own `<div>` with DOM from `render` and renders it
 * again whenever the room's state changes.
 */
function decoration(
  options: IDecorationOptions,
  className: string,
  render: (state: RoomState, m: IRoomMessage) => HTMLElement[],
  watchRead: boolean
): React.FC<IDecorationProps> {
  return function NoctisDecoration(props: IDecorationProps) {
    const ref = React.useRef<HTMLDivElement>(null);
    const path = props.model?.name;
    const id = props.message?.id;
    React.useEffect(() => {
      const node = ref.current;
      if (!node || !path || !path.endsWith('.chat') || !id) {
        return;
      }
      const state = options.rooms.get(path);
      let signature = '';
      const update = (): void => {
        const m = state.message(id);
        const parts = m ? render(state, m) : [];
        const next = JSON.stringify([
          m,
          m?.reply_to ? state.message(m.reply_to) : null,
          state.info?.access,
          state.pickerFor === id,
          state.replyTo === id,
          parts.length
        ]);
        if (next !== signature) {
          signature = next;
          node.replaceChildren(...parts);
        }
      };
      update();
      const stop = state.subscribe(update);
      if (watchRead) {
        state.watchRead(node, id);
      }
      return () => {
        stop();
        state.unwatchRead(node);
      };
    }, [path, id]);
    return React.createElement('div', {
      ref,
      className,
      'data-message-id': id
    });
  };
}

/** The footer (reactions, actions, reply box, receipts, study card) of each message. */
export function footerComponent(options: IDecorationOptions): React.FC<IDecorationProps> {
  const open = (path: string): void => void options.openPath(path);
  return decoration(
    options,
    'noctis-rooms-decoration noctis-rooms-footer',
    (state, m) => messageFooter(state, m, open),
    true
  );
}

/** The "in reply to" line above a reply. */
export function preambleComponent(options: IDecorationOptions): React.FC<IDecorationProps> {
  return decoration(
    options,
    'noctis-rooms-decoration noctis-rooms-preamble',
    (state, m) => (m.deleted ? [] : replyLine(state, m)),
    false
  );
}
