/**
 * noctis-rooms: the "Room" right-sidebar panel for jupyterlab-chat documents.
 *
 * Independent of @jupyter/chat's tokens: it follows the active `.chat` document through
 * the shell and the document manager and talks to the Noctis rooms REST API.
 */
import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { LabIcon } from '@jupyterlab/ui-components';
import { Token } from '@lumino/coreutils';
import { Widget } from '@lumino/widgets';

import * as chat from '@jupyter/chat';

import { RoomsAPI } from './api';
import { footerComponent, preambleComponent } from './messageView';
import { RoomPanel } from './panel';
import { RoomStates } from './state';

export { RoomsAPI, RoomsAPIError } from './api';
export { RoomPanel, safeOpenPath } from './panel';

/** @jupyter/chat's registries (looked up by name: the token of the chat extension's
 * own @jupyter/chat, shared at run time, is the one that counts). */
const chatTokens = chat as unknown as { [name: string]: Token<any> };
const FOOTERS = chatTokens['IMessageFooterRegistry'];
const PREAMBLES = chatTokens['IMessagePreambleRegistry'];

const PANEL_ID = 'noctis-rooms-panel';
const COMMAND_SHOW = 'noctis-rooms:show-panel';

const roomIcon = new LabIcon({
  name: 'noctis-rooms:room',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
    '<g class="jp-icon3" fill="#616161">' +
    '<path d="M4 4h16a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z' +
    'm3 5a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z' +
    'm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z"/></g></svg>'
});

/** The room path (relative to the server root) of a `.chat` document widget. */
function chatPath(
  app: JupyterFrontEnd,
  docManager: IDocumentManager,
  widget: Widget | null
): string | null {
  if (!widget) {
    return null;
  }
  const context =
    docManager.contextForWidget(widget) ?? (widget as any).context ?? null;
  const raw: unknown = context?.path;
  if (typeof raw !== 'string' || !raw.endsWith('.chat')) {
    return null;
  }
  // strip a drive prefix such as "RTC:" from collaborative documents
  return app.serviceManager.contents.localPath(raw);
}

/** Show in `panel` the room of the active chat; while another kind of document is
 * active, keep showing the last chat as long as it stays open (e.g. after opening a
 * study from it). */
function followActiveChat(
  app: JupyterFrontEnd,
  labShell: ILabShell,
  docManager: IDocumentManager,
  panel: RoomPanel
): void {
  let followed: Widget | null = null;
  const follow = (widget: Widget | null): void => {
    const path = chatPath(app, docManager, widget);
    if (path === null) {
      if (followed === null || followed.isDisposed) {
        followed = null;
        panel.setRoom(null);
      }
      return;
    }
    if (followed !== widget) {
      followed = widget;
      widget!.disposed.connect(() => {
        if (followed === widget) {
          followed = null;
          follow(labShell.currentWidget);
        }
      });
    }
    panel.setRoom(path);
  };
  labShell.currentChanged.connect((_, args) => follow(args.newValue));
  void app.restored.then(() => follow(labShell.currentWidget));
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'noctis-rooms:panel',
  description:
    'Room side panel: members, presence, reactions, replies, read receipts, moderation.',
  autoStart: true,
  requires: [ILabShell, IDocumentManager],
  optional: [ICommandPalette, FOOTERS, PREAMBLES],
  activate: (
    app: JupyterFrontEnd,
    labShell: ILabShell,
    docManager: IDocumentManager,
    palette: ICommandPalette | null,
    footers: any,
    preambles: any
  ) => {
    const user = app.serviceManager.user;
    let username = '';
    void user.ready.then(() => {
      username = user.identity?.username ?? '';
      void panel.refresh();
    });
    const rooms = new RoomStates({
      api: new RoomsAPI(app.serviceManager.serverSettings),
      username: () => username
    });
    const decorations = {
      rooms,
      openPath: (path: string) => app.commands.execute('docmanager:open', { path })
    };
    // one message list: reactions, replies and receipts go into the chat view
    footers?.addSection({ component: footerComponent(decorations), position: 'left' });
    preambles?.addComponent(preambleComponent(decorations));
    const panel = new RoomPanel({ rooms });
    panel.id = PANEL_ID;
    panel.title.icon = roomIcon;
    panel.title.caption = 'Room';
    app.shell.add(panel, 'right', { rank: 650 });
    followActiveChat(app, labShell, docManager, panel);

    app.commands.addCommand(COMMAND_SHOW, {
      label: 'Show Room Panel',
      caption: 'Members, reactions, replies and read receipts of the active chat',
      execute: () => labShell.activateById(PANEL_ID)
    });
    palette?.addItem({ command: COMMAND_SHOW, category: 'Chat' });
  }
};

export default plugin;
