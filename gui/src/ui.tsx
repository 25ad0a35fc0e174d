import { type ReactNode, useEffect, useId, useRef } from 'react';

/**
 * A modal dialog on the native <dialog> element: the browser keeps focus
 * inside it, Escape closes it, and focus returns to what opened it.
 */
export function Dialog(props: { title: string; onClose: () => void; children: ReactNode; wide?: boolean; testId?: string }) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const { onClose } = props;
  const closeRef = useRef(onClose);
  useEffect(() => {
    closeRef.current = onClose;
  }, [onClose]);
  // Opened once, on mount (the parent re-renders whenever a change arrives; the dialog must not blink).
  useEffect(() => {
    const dialog = ref.current!;
    const opener = document.activeElement as HTMLElement | null;
    if (!dialog.open) dialog.showModal();
    // showModal() focuses the first focusable (the Close button): the first field is where the user starts.
    dialog.querySelector<HTMLElement>('[data-autofocus]')?.focus();
    const cancel = (e: Event) => {
      e.preventDefault();
      closeRef.current();
    };
    dialog.addEventListener('cancel', cancel);
    return () => {
      dialog.removeEventListener('cancel', cancel);
      if (dialog.open) dialog.close();
      if (opener?.isConnected) opener.focus();
    };
  }, []);
  return (
    <dialog ref={ref} className={props.wide ? 'dialog wide' : 'dialog'} aria-labelledby={titleId} data-testid={props.testId}>
      <div className="dialog-head">
        <h2 id={titleId}>{props.title}</h2>
        <button type="button" className="icon" aria-label="Close" onClick={onClose}>
          ×
        </button>
      </div>
      {props.children}
    </dialog>
  );
}

/** A form field: label, control, and the server's message for it. */
export function Field(props: { label: string; error?: string; hint?: string; children: (id: string, describedBy?: string) => ReactNode }) {
  const id = useId();
  const errId = `${id}-err`;
  const hintId = `${id}-hint`;
  const describedBy = [props.error ? errId : undefined, props.hint ? hintId : undefined].filter(Boolean).join(' ') || undefined;
  return (
    <div className={props.error ? 'field invalid' : 'field'}>
      <label htmlFor={id}>{props.label}</label>
      {props.children(id, describedBy)}
      {props.hint && (
        <small id={hintId} className="hint">
          {props.hint}
        </small>
      )}
      {props.error && (
        <small id={errId} className="field-error">
          {props.error}
        </small>
      )}
    </div>
  );
}

/** The "changed by someone else" message of a 412, with its Reload. */
export function ConflictNotice(props: { onReload: () => void; busy?: boolean }) {
  return (
    <div className="alert conflict" role="alert" data-testid="conflict">
      <span>Changed by someone else — reload to see the current version, then apply your change again.</span>
      <button type="button" onClick={props.onReload} disabled={props.busy}>
        Reload
      </button>
    </div>
  );
}

export function ErrorNotice(props: { message: string }) {
  return (
    <div className="alert error" role="alert">
      {props.message}
    </div>
  );
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit' });
}

/** `user:alice` → `alice`, `api_key:ci` → `API key ci`. */
export function actorLabel(actor: string): string {
  if (actor.startsWith('user:')) return actor.slice(5);
  if (actor.startsWith('api_key:')) return `API key ${actor.slice(8)}`;
  return actor;
}
