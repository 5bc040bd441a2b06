/**
 * Devices that misbehave, for the tests that compose a gateway with a device: built from the
 * device SDK's public API and its phases (`DeviceOptions.phases`), never from switches in it.
 */
import type { Device, PhaseFactories } from '@livematrix/device-sdk';
import { defaultPhases } from '@livematrix/device-sdk/phases';

/**
 * The device's process dies: its MQTT socket goes without DISCONNECT or BYE (the broker
 * publishes its Last Will), and its session stops with it (timers, tables and keys).
 */
export async function crash(device: Device): Promise<void> {
  device.link.client.stream.destroy();
  await device.link.close(true).catch(() => undefined); // no reconnect
  await device.stop(); // the link is closed: no BYE gets out
}

/** A device that reports 1 MiB more consumed than its consumer took (lying about its pace, [LM-DLV-4]). */
export const overstateConsumption: Partial<PhaseFactories> = {
  acks: (ctx) => defaultPhases.acks({
    ...ctx,
    progress() {
      const p = ctx.progress();
      return { ...p, consumed: p.consumed > p.from ? p.consumed + (1 << 20) : p.consumed };
    },
  }),
};
