// The session's time left in JupyterLab's status bar, and one warning before the server ends.
//
// The server extension (daas_lab) answers GET <base>/daas/session from what the hub put in the
// server's environment (the end of its lifetime or wall time, the idle timeout, when to warn) and the
// server's own last activity. Asking does not count as activity, so an open tab does not keep an idle
// server alive.

import { Notification } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { IStatusBar } from '@jupyterlab/statusbar';
import { Widget } from '@lumino/widgets';

const REFRESH_MS = 30 * 1000;

function inWords(seconds) {
  const minutes = Math.max(0, Math.round(seconds / 60));
  if (minutes < 60) {
    return `${minutes} min`;
  }
  const hours = Math.floor(minutes / 60);
  return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
}

function clock(epoch) {
  return new Date(epoch * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

async function fetchSession(settings) {
  const url = URLExt.join(settings.baseUrl, 'daas', 'session');
  const response = await ServerConnection.makeRequest(url, {}, settings);
  if (!response.ok) {
    throw new Error(`daas/session: ${response.status}`);
  }
  return response.json();
}

// What the status bar says, and whether the end is near enough to warn.
function describe(session, now) {
  const parts = [];
  let ending = false;
  if (session.ends_at) {
    const left = session.ends_at - now;
    parts.push(`ends ${clock(session.ends_at)} (${inWords(left)} left)`);
    ending = left <= session.end_warning;
  }
  if (session.idle_ends_at && (!session.ends_at || session.idle_ends_at < session.ends_at)) {
    parts.push(`idle end in ${inWords(session.idle_ends_at - now)}`);
  }
  return { text: parts.length ? `Session ${parts.join(', ')}` : '', ending };
}

const plugin = {
  id: '@jupyterhub-daas/lab:session',
  description: 'Shows when the server ends and warns before it does.',
  autoStart: true,
  optional: [IStatusBar],
  activate: (app, statusBar) => {
    const settings = ServerConnection.makeSettings();
    const item = new Widget();
    item.addClass('daas-session-left');
    item.node.title = 'When this server ends (set by the hub: its profile and its resources)';
    if (statusBar) {
      statusBar.registerStatusItem(plugin.id, { item, align: 'left', rank: 100 });
    }
    let warned = false;

    async function refresh() {
      let session;
      try {
        session = await fetchSession(settings);
      } catch (err) {
        console.warn('jupyterhub-daas: the session is unknown', err);
        return;
      }
      const now = session.now;
      const { text, ending } = describe(session, now);
      item.node.textContent = text;
      item.toggleClass('daas-session-ending', ending);
      if (ending && !warned) {
        warned = true;
        Notification.warning(
          `This server ends at ${clock(session.ends_at)}, in ${inWords(session.ends_at - now)}: ` +
            'save your work. Start a new server from the hub to go on.',
          { autoClose: false }
        );
      }
    }

    app.restored.then(() => {
      refresh();
      setInterval(refresh, REFRESH_MS);
    });
  }
};

export default plugin;
