//! PROXY protocol headers as a load balancer (or anyone reaching a
//! listener with `use-proxy-protocol`) sends them: the parser must never
//! panic, never claim more bytes than it was given or more than the bound,
//! and agree with itself when given more bytes after a complete header.
#![no_main]

use gateway::listener::proxy_protocol::{MAX_HEADER, parse, v1_header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((origin, length))) = parse(data) {
        assert!(length <= data.len() && length <= MAX_HEADER);
        // Bytes after the header do not change what it says.
        let mut longer = data[..length].to_vec();
        longer.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let again = parse(&longer).expect("still a header").expect("complete");
        assert_eq!(again, (origin.clone(), length));
        // What the gateway would send upstream for it parses back.
        if let (Some(source), Some(destination)) = (origin.source, origin.destination) {
            let line = v1_header(source, destination);
            assert!(parse(&line).is_ok());
        }
    }
});
