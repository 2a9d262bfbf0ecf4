import { useMemo, useState, type FormEvent } from 'react';
import qrcode from 'qrcode-generator';
import { useApi } from '../session';
import { useAction, useAsync } from '../hooks';
import { CopyButton, ErrorMessage, Loading, PageHeader } from '../components/ui';

/** The otpauth URI as a QR code, drawn as SVG rectangles (no image data URL, no inline HTML). */
export function QrCode({ text, label }: { text: string; label: string }) {
  const modules = useMemo(() => {
    const qr = qrcode(0, 'M');
    qr.addData(text);
    qr.make();
    const n = qr.getModuleCount();
    const dark: [number, number][] = [];
    for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) if (qr.isDark(r, c)) dark.push([c, r]);
    return { n, dark };
  }, [text]);
  const quiet = 4;
  const size = modules.n + 2 * quiet;
  return (
    <svg className="qr" role="img" aria-label={label} viewBox={`0 0 ${size} ${size}`} width={size * 5} height={size * 5} shapeRendering="crispEdges">
      <rect width={size} height={size} fill="#fff" />
      {modules.dark.map(([x, y]) => (
        <rect key={`${x}-${y}`} x={x + quiet} y={y + quiet} width={1} height={1} fill="#000" />
      ))}
    </svg>
  );
}

/** The signed-in user's two-factor sign-in: set up with an authenticator app, or turn off. */
export function TwoFactorPage() {
  const { api } = useApi();
  const status = useAsync(() => api.twoFactorStatus(), [api]);
  const [setup, setSetup] = useState<{ otpauth_uri: string; secret: string } | null>(null);
  const [code, setCode] = useState('');
  const [recovery, setRecovery] = useState<string[] | null>(null);
  const start = useAction(async () => {
    setSetup(await api.setupTwoFactor());
    setCode('');
  });
  const confirm = useAction(async () => {
    const res = await api.confirmTwoFactor(code.trim());
    setRecovery(res.recovery_codes);
    setSetup(null);
    setCode('');
    status.reload();
  });
  const disable = useAction(async () => {
    await api.disableTwoFactor(code.trim());
    setCode('');
    status.reload();
  });

  async function submitConfirm(e: FormEvent) {
    e.preventDefault();
    await confirm.run();
  }
  async function submitDisable(e: FormEvent) {
    e.preventDefault();
    await disable.run();
  }

  const s = status.data;
  return (
    <>
      <PageHeader title="Two-factor sign-in" />
      <ErrorMessage error={status.error} prefix="The two-factor state could not be loaded" />
      {status.loading && !s ? <Loading /> : null}
      {s && s.required && !s.enabled ? (
        <p className="notice" role="status">
          This server requires two-factor sign-in. Set it up here to reach the rest of the dashboard.
        </p>
      ) : null}
      {recovery ? (
        <section className="card" aria-labelledby="recovery-title">
          <h2 id="recovery-title">Your recovery codes</h2>
          <p>
            Two-factor sign-in is on. Keep these codes somewhere safe: each signs you in once if you lose your
            authenticator app. They are shown only now.
          </p>
          <ul className="recovery-codes" aria-label="Recovery codes">
            {recovery.map((c) => (
              <li key={c}>
                <code>{c}</code>
              </li>
            ))}
          </ul>
          <CopyButton text={recovery.join('\n')} label="Copy the codes" />
        </section>
      ) : null}
      {s && !s.enabled && !setup ? (
        <section className="card">
          <p>Two-factor sign-in is off. With it on, signing in also needs a code from an authenticator app.</p>
          <button type="button" className="primary" onClick={() => start.run()} disabled={start.busy}>
            Set up two-factor sign-in
          </button>
          <ErrorMessage error={start.error} />
        </section>
      ) : null}
      {setup ? (
        <section className="card" aria-labelledby="setup-title">
          <h2 id="setup-title">Scan this code with your authenticator app</h2>
          <QrCode text={setup.otpauth_uri} label="QR code for the authenticator app" />
          <p>
            Or type this key by hand: <code className="secret">{setup.secret}</code>
          </p>
          <form className="inline-form" onSubmit={submitConfirm} aria-label="Confirm two-factor sign-in">
            <div className="field">
              <label htmlFor="tf-code">Code from the app</label>
              <input id="tf-code" inputMode="numeric" autoComplete="one-time-code" required value={code} onChange={(e) => setCode(e.target.value)} />
            </div>
            <button type="submit" className="primary" disabled={confirm.busy}>
              Turn on
            </button>
            <ErrorMessage error={confirm.error} />
          </form>
        </section>
      ) : null}
      {s && s.enabled ? (
        <section className="card">
          <p>
            Two-factor sign-in is on. {s.recovery_codes_left} of 10 recovery codes left.
          </p>
          {s.required ? (
            <p className="muted">This server requires it, so it cannot be turned off.</p>
          ) : (
            <form className="inline-form" onSubmit={submitDisable} aria-label="Turn off two-factor sign-in">
              <div className="field">
                <label htmlFor="tf-off-code">Code from the app, or a recovery code</label>
                <input id="tf-off-code" autoComplete="one-time-code" required value={code} onChange={(e) => setCode(e.target.value)} />
              </div>
              <button type="submit" className="secondary" disabled={disable.busy}>
                Turn off
              </button>
              <ErrorMessage error={disable.error} />
            </form>
          )}
        </section>
      ) : null}
    </>
  );
}
