use super::*;

#[test]
fn framing_detects_damage() {
    let path = Path::new("snap.bin");
    let mut good = Vec::new();
    good.extend_from_slice(MAGIC);
    good.extend_from_slice(&VERSION.to_le_bytes());
    good.extend_from_slice(&3u64.to_le_bytes());
    good.extend_from_slice(&crc32fast::hash(b"abc").to_le_bytes());
    good.extend_from_slice(b"abc");
    assert_eq!(payload(path, &good).unwrap(), (VERSION, &b"abc"[..]));
    let mut flipped = good.clone();
    flipped[HEADER] ^= 1;
    assert!(payload(path, &flipped).unwrap_err().contains("checksum"));
    assert!(
        payload(path, &good[..good.len() - 1])
            .unwrap_err()
            .contains("truncated")
    );
    assert!(
        payload(path, &good[..10])
            .unwrap_err()
            .contains("bad header")
    );
    let mut v1 = good.clone();
    v1[8] = 1;
    assert_eq!(payload(path, &v1).unwrap().0, 1);
    let mut v2 = good.clone();
    v2[8] = 2;
    assert_eq!(payload(path, &v2).unwrap().0, 2);
    let mut v4 = good.clone();
    v4[8] = 4;
    assert!(payload(path, &v4).unwrap_err().contains("version 4"));
    assert!(payload(path, &good).is_ok());
    assert!(payload(path, b"").unwrap_err().contains("snap.bin"));
}
