/** How long-running commands end: on the first Ctrl-C or SIGTERM they stop what they run, once. */
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
  })
}
