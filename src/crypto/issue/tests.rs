use super::*;
use x509_cert::time::Time;

#[test]
fn device_ids() {
    for ok in ["a", "dev-0001", "A.b_c-9", &"x".repeat(64)] {
        assert_eq!(check_device_id(ok), Ok(()), "{ok}");
    }
    for bad in [
        "",
        ".hidden",
        "..",
        "a/b",
        "a b",
        "é",
        "a\n",
        &"x".repeat(65),
    ] {
        assert!(check_device_id(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn subject_extra_checks() {
    let ok = SubjectExtra {
        country: Some("de".into()),
        organization: Some("Fleet Ümlaut".into()),
        ..Default::default()
    };
    assert_eq!(ok.check(), Ok(()));
    let bad_c = SubjectExtra {
        country: Some("DEU".into()),
        ..Default::default()
    };
    assert_eq!(bad_c.check().map_err(|e| e.0), Err(SubjectPart::Country));
    let bad_o = SubjectExtra {
        organization: Some("a\u{7}".into()),
        ..Default::default()
    };
    assert_eq!(
        bad_o.check().map_err(|e| e.0),
        Err(SubjectPart::Organization)
    );
}

#[test]
fn times_switch_to_generalized_in_2050() {
    assert!(matches!(time(0).unwrap(), Time::UtcTime(_)));
    // 2049-12-31T23:59:59Z and 2050-01-01T00:00:00Z.
    assert!(matches!(time(2_524_607_999).unwrap(), Time::UtcTime(_)));
    assert!(matches!(time(2_524_608_000).unwrap(), Time::GeneralTime(_)));
}

#[test]
fn serials_are_positive_and_128_bits() {
    for _ in 0..64 {
        let serial = random_serial().unwrap();
        let bytes = serial.as_bytes();
        assert!(bytes.len() <= 17);
        // Positive: a set top bit is preceded by a zero byte.
        assert!(bytes[0] & 0x80 == 0, "{bytes:02x?}");
    }
}
