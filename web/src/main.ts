import './styles.css';
import { ApiError } from './api-client.js';
import { byId, setText } from './dom.js';
import { JobBoard } from './job-board.js';
import { clearSession, createSession, identityProvider, loadSession, saveSession, type Session } from './session.js';
import { UploadView } from './upload-view.js';

/** Entry point: signs the artist in (or picks up the stored session) and shows the job board. */
let board: JobBoard | null = null;
const signInSection = byId('sign-in');
const workspace = byId('workspace');
const signOutButton = byId<HTMLButtonElement>('sign-out');
const signInError = byId('sign-in-error');

new UploadView(
  () => {
    if (!board) throw new ApiError('AUTH_MISSING', 401, 'Sign in first.');
    return board.api;
  },
  (jobId, assetName, files, kind) => board?.jobStarted(jobId, assetName, files, kind),
);

function showSignIn(message?: string): void {
  board?.stop();
  board = null;
  workspace.hidden = true;
  signOutButton.hidden = true;
  setText(byId('who'), '');
  signInSection.hidden = false;
  signInError.hidden = !message;
  setText(signInError, message ?? '');
  const provider = identityProvider();
  byId('sign-in-user-row').hidden = !provider.asksForUser;
  setText(byId('sign-in-button'), provider.label);
  (provider.asksForUser ? byId('sign-in-user') : byId('sign-in-button')).focus();
}

function showWorkspace(session: Session): void {
  signInSection.hidden = true;
  workspace.hidden = false;
  signOutButton.hidden = false;
  setText(byId('who'), `Signed in as ${session.user}`);
  board = new JobBoard(session, (message) => {
    clearSession();
    showSignIn(message);
  });
  board.start();
}

byId<HTMLFormElement>('sign-in-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const button = byId<HTMLButtonElement>('sign-in-button');
  button.disabled = true;
  signInError.hidden = true;
  identityProvider()
    .signIn(byId<HTMLInputElement>('sign-in-user').value.trim())
    .then(({ token, user }) => {
      const session = createSession(token, user);
      saveSession(session);
      showWorkspace(session);
    })
    .catch((err: unknown) => {
      setText(signInError, err instanceof ApiError ? err.message : 'Sign-in failed; try again.');
      signInError.hidden = false;
    })
    .finally(() => (button.disabled = false));
});

signOutButton.addEventListener('click', () => {
  clearSession();
  showSignIn();
});

const stored = loadSession();
if (stored) showWorkspace(stored);
else showSignIn();
