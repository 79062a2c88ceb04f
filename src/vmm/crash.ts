/**
 * A domain crash: what the VMM does to a guest that breaks the rules of its virtual hardware
 * (maps memory it does not have, exhausts what the host can give it). Only that domain stops.
 */
export class DomainCrash extends Error {
  constructor(readonly reason: string) {
    super(`domain crashed: ${reason}`);
  }
}
