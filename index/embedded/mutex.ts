/** A FIFO async mutex: index mutations, snapshots and build switches take turns; searches never wait on it. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  /** Run `fn` once every earlier holder has finished. */
  async run<T>(fn: () => Promise<T> | T): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
