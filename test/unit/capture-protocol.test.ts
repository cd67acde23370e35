import assert from 'node:assert/strict';
import fc from 'fast-check';
import { classify, H2_PREFACE, MAX_REQUEST_LINE, settle } from '../../sidecar/capture/protocol.ts';

const b = (s: string | number[]) => (typeof s === 'string' ? Buffer.from(s, 'latin1') : Buffer.from(s));
// The first bytes of a real TLS 1.3 ClientHello record (curl 8 → example.com).
const CLIENT_HELLO = b([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);

describe('capture: protocol classification', () => {
  it('recognises HTTP/1.x request lines, whatever the method and target', () => {
    for (const line of ['GET / HTTP/1.1', 'POST /api/v1/orders?x=1 HTTP/1.1', 'HEAD * HTTP/1.0', 'OPTIONS * HTTP/1.1', 'CONNECT db:5432 HTTP/1.1', 'PROPFIND /dav HTTP/1.1', 'PATCH /a HTTP/1.1']) {
      assert.equal(classify(b(`${line}\r\nHost: x\r\n\r\n`)), 'http1', line);
    }
  });

  it('recognises the HTTP/2 prior-knowledge preface, and waits while bytes are a prefix of it', () => {
    assert.equal(classify(Buffer.concat([H2_PREFACE, b([0, 0, 0, 4, 0, 0, 0, 0, 0])])), 'h2');
    for (let n = 1; n < H2_PREFACE.length; n++) assert.equal(classify(H2_PREFACE.subarray(0, n)), 'more', `${n} bytes`);
    // "PRI " could be neither a method we know nor the preface once it diverges.
    assert.equal(classify(b('PRI * HTTP/2.0\r\n\r\nXX')), 'raw');
  });

  it('recognises a TLS ClientHello and nothing else in a handshake record', () => {
    assert.equal(classify(CLIENT_HELLO), 'tls');
    for (let n = 1; n < 6; n++) assert.equal(classify(CLIENT_HELLO.subarray(0, n)), 'more', `${n} bytes`);
    assert.equal(classify(b([0x16, 0x03, 0x03, 0x00, 0x10, 0x02])), 'raw', 'a ServerHello is not a client opening');
    assert.equal(classify(b([0x16, 0x02, 0x00])), 'raw', 'SSL 2 record version');
    assert.equal(classify(b([0x16, 0x03, 0x09])), 'raw');
  });

  it('waits on partial request lines and decides as soon as they can no longer be HTTP', () => {
    for (const partial of ['G', 'GE', 'GET', 'GET ', 'GET /', 'GET /x ', 'GET /x HT', 'GET /x HTTP/1.', 'GET /x HTTP/1.1', 'GET /x HTTP/1.1\r']) {
      assert.equal(classify(b(partial)), 'more', partial);
    }
    for (const bad of ['GET  / HTTP/1.1\r\n', 'GET / HTTP/2.0\r\n', 'GET /x HTTP/1.12', 'GET /x XTTP', 'GET /\r\n', 'get / HTTP/1.1\r\n', 'GETX / HTTP/1.1\r\n']) {
      assert.equal(classify(b(bad)), 'raw', JSON.stringify(bad));
    }
  });

  it('calls server-first and binary protocols raw from their first bytes', () => {
    assert.equal(classify(b([0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f])), 'raw', 'PostgreSQL SSLRequest');
    assert.equal(classify(b('*1\r\n$4\r\nPING\r\n')), 'raw', 'Redis');
    assert.equal(classify(b('SSH-2.0-OpenSSH_9.2\r\n')), 'raw');
    assert.equal(classify(b([0x05, 0x01, 0x00])), 'raw', 'SOCKS5');
  });

  it('never buffers a request line without bound', () => {
    assert.equal(classify(b(`GET /${'a'.repeat(MAX_REQUEST_LINE)}`)), 'raw');
    assert.equal(classify(b(`GET /${'a'.repeat(MAX_REQUEST_LINE - 100)}`)), 'more');
  });

  it('settles what is still undecided as raw (timeout, end of stream)', () => {
    assert.equal(settle(b('')), 'raw');
    assert.equal(settle(b('GET /')), 'raw');
    assert.equal(settle(H2_PREFACE.subarray(0, 10)), 'raw');
    assert.equal(settle(b('GET / HTTP/1.1\r\n')), 'http1');
  });

  it('is consistent as bytes arrive: once decided, more bytes never change the verdict', () => {
    const inputs = fc.oneof(
      fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
      fc.constantFrom('GET / HTTP/1.1\r\nHost: a\r\n\r\n', 'POST /x HTTP/1.0\r\n\r\n', 'GET /\r\n', 'PUT  x').map(b),
      fc.constant(Buffer.concat([H2_PREFACE, b('\0\0\0\x04\0\0\0\0\0')])),
      fc.constant(Buffer.concat([CLIENT_HELLO, b('rest')])),
    );
    fc.assert(
      fc.property(inputs, (bytes) => {
        let decided: string | undefined;
        for (let n = 1; n <= bytes.length; n++) {
          const v = classify(bytes.subarray(0, n));
          if (decided) assert.equal(v, decided, `${n} of ${JSON.stringify(bytes.toString('latin1'))}`);
          else if (v !== 'more') decided = v;
        }
      }),
      { numRuns: 500 },
    );
  });
});
