//! The long-lived espeak-ng phonemizer.

use brazen_speech::ipa;

#[test]
fn repeated_and_concurrent_calls_give_the_same_ipa() {
    let expected = ipa("en-us", "Your order shipped, and it arrives Monday.").unwrap();
    assert_eq!(expected, "jʊɹ ˈɔːɹdɚ ʃˈɪpt, ænd ɪɾ ɚɹˈaɪvz mˈʌndeɪ.");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                (0..10).map(|_| ipa("en-us", "Your order shipped, and it arrives Monday.").unwrap()).collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap().iter().all(|got| *got == expected));
    }
    assert_eq!(ipa("en-us", "").unwrap(), "", "an empty phrase has no phonemes");
    assert_eq!(ipa("en-us", "Hi!\nBye.").unwrap(), "hˈaɪ! bˈaɪ.", "line breaks inside a phrase do not split it");
}
