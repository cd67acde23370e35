// A gRPC service without protobuf for tests: JSON messages through grpc-js's
// generic definitions. /shop.Cart/{AddItem,GetCart} unary, /shop.Cart/Watch server-streaming.
import * as grpc from '@grpc/grpc-js';

const json = { serialize: (v: unknown) => Buffer.from(JSON.stringify(v)), deserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown };
const method = (path: string, responseStream = false): grpc.MethodDefinition<unknown, unknown> => ({
  path, requestStream: false, responseStream,
  requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize,
});
export const CART: grpc.ServiceDefinition = {
  AddItem: method('/shop.Cart/AddItem'),
  GetCart: method('/shop.Cart/GetCart'),
  Watch: method('/shop.Cart/Watch', true),
};
export const CartClient = grpc.makeGenericClientConstructor(CART, 'Cart');
export type CartClientInstance = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

/** One unary call; resolves with the error or the response, never rejects. */
export function unaryCall(client: CartClientInstance, name: string, req: unknown, md = new grpc.Metadata()): Promise<{ err: grpc.ServiceError | null; res: unknown; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    (client[name] as (r: unknown, m: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: unknown) => void) => void).call(client, req, md, (err, res) =>
      resolve({ err, res, ms: performance.now() - t0 }),
    );
  });
}
