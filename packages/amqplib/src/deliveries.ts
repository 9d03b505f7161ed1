import type { Channel, Message } from 'amqplib';

// Delivery tags are numbered per channel, so tag 7 of the production channel
// and tag 7 of a shadow channel are different messages: an acknowledgement
// must go to the channel that delivered the message, whichever wrapper a
// handler calls it on. Keyed by the message and by its `fields` object, so a
// spread copy of the message (`{ ...message }`) is still recognised.
const deliveredBy = new WeakMap<object, Channel>();

/** Notes which amqplib channel delivered `message` (a consumed or fetched one). */
export function rememberDelivery(message: Message, channel: Channel): void {
  deliveredBy.set(message, channel);
  if (typeof message.fields === 'object' && message.fields !== null) deliveredBy.set(message.fields, channel);
}

/** The channel that delivered `message`, if it came through Dye. */
export function deliveringChannel(message: Message): Channel | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  return (
    deliveredBy.get(message) ??
    (typeof message.fields === 'object' && message.fields !== null ? deliveredBy.get(message.fields) : undefined)
  );
}
