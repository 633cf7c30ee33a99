/**
 * How long-running commands end: on the first Ctrl-C or SIGTERM they stop what they run, once.
 *
 * Started by npm (`npm start`, `npx covenant …`), a command may never see the SIGTERM sent to
 * npm: npm hands it to the `sh -c` it runs scripts in, which dies without passing it on, and this
 * process is left to its own devices. So under npm a command also stops when the process that
 * started it goes away (its parent changes).
 */

/** How often the parent is looked at, under npm. */
const PARENT_CHECK_MS = 250

/** Calls `gone` once if this process was started by npm and its parent goes away. */
export function onParentGone(gone: () => void): void {
  if (process.env.npm_lifecycle_event === undefined) return
  const parent = process.ppid
  const timer = setInterval(() => {
    if (process.ppid === parent) return
    clearInterval(timer)
    gone()
  }, PARENT_CHECK_MS)
  timer.unref()
}

export function stopOnSignal(what: string, stop: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let stopping = false
    const onSignal = (): void => {
      if (stopping) return
      stopping = true
      process.stderr.write(`stopping ${what}…\n`)
      stop().then(resolve, reject)
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    onParentGone(onSignal)
  })
}
