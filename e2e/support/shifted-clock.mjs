// Loaded with `node --import` into the platform's processes by the e2e tests that need the
// calendar to move (closing a month needs a month that has ended). `Date.now()` and `new Date()`
// answer the machine's clock plus the milliseconds written in CLOCK_OFFSET_FILE, read again
// every 20 ms, so a test moves every process's clock at once by rewriting the file. Timers,
// timeouts and PostgreSQL's own clock are left alone.
import { readFileSync } from 'node:fs';

const file = process.env['CLOCK_OFFSET_FILE'];
if (file) {
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  let offset = 0;
  const read = () => {
    try {
      const text = readFileSync(file, 'utf8').trim();
      const value = Number(text);
      if (text !== '' && Number.isFinite(value)) offset = value;
    } catch {
      // The file is being replaced: keep the offset read last.
    }
  };
  read();
  setInterval(read, 20).unref();
  const now = () => realNow() + offset;
  const ShiftedDate = new Proxy(RealDate, {
    construct(target, args, newTarget) {
      return Reflect.construct(
        target,
        args.length === 0 ? [now()] : args,
        newTarget === ShiftedDate ? target : newTarget,
      );
    },
    apply() {
      return new RealDate(now()).toString();
    },
    get(target, prop) {
      return prop === 'now' ? now : Reflect.get(target, prop, target);
    },
  });
  globalThis.Date = ShiftedDate;
}
