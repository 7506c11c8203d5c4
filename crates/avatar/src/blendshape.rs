//! The 55 blendshape values of an Azure animation frame (ARKit's 52 in Azure's order, then
//! head roll and the two eye rolls), and the mouth pose of each viseme.

/// Values in a frame.
pub const COUNT: usize = 55;

/// One frame: every value in 0..=1 (the rolls in -1..=1).
pub type Frame = [f32; COUNT];

/// The names, in Azure's order (index = position in a frame).
pub const NAMES: [&str; COUNT] = [
    "eyeBlinkLeft",
    "eyeLookDownLeft",
    "eyeLookInLeft",
    "eyeLookOutLeft",
    "eyeLookUpLeft",
    "eyeSquintLeft",
    "eyeWideLeft",
    "eyeBlinkRight",
    "eyeLookDownRight",
    "eyeLookInRight",
    "eyeLookOutRight",
    "eyeLookUpRight",
    "eyeSquintRight",
    "eyeWideRight",
    "jawForward",
    "jawLeft",
    "jawRight",
    "jawOpen",
    "mouthClose",
    "mouthFunnel",
    "mouthPucker",
    "mouthLeft",
    "mouthRight",
    "mouthSmileLeft",
    "mouthSmileRight",
    "mouthFrownLeft",
    "mouthFrownRight",
    "mouthDimpleLeft",
    "mouthDimpleRight",
    "mouthStretchLeft",
    "mouthStretchRight",
    "mouthRollLower",
    "mouthRollUpper",
    "mouthShrugLower",
    "mouthShrugUpper",
    "mouthPressLeft",
    "mouthPressRight",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "browDownLeft",
    "browDownRight",
    "browInnerUp",
    "browOuterUpLeft",
    "browOuterUpRight",
    "cheekPuff",
    "cheekSquintLeft",
    "cheekSquintRight",
    "noseSneerLeft",
    "noseSneerRight",
    "tongueOut",
    "headRoll",
    "leftEyeRoll",
    "rightEyeRoll",
];

/// The index of the value called `name`.
pub fn index(name: &str) -> Option<usize> {
    NAMES.iter().position(|n| *n == name)
}

/// Indices of the values the lip-sync and idle motion drive.
pub mod at {
    #![allow(missing_docs)]
    pub const EYE_BLINK_LEFT: usize = 0;
    pub const EYE_LOOK_IN_LEFT: usize = 2;
    pub const EYE_LOOK_OUT_LEFT: usize = 3;
    pub const EYE_BLINK_RIGHT: usize = 7;
    pub const EYE_LOOK_IN_RIGHT: usize = 9;
    pub const EYE_LOOK_OUT_RIGHT: usize = 10;
    pub const JAW_FORWARD: usize = 14;
    pub const JAW_OPEN: usize = 17;
    pub const MOUTH_CLOSE: usize = 18;
    pub const MOUTH_FUNNEL: usize = 19;
    pub const MOUTH_PUCKER: usize = 20;
    pub const MOUTH_SMILE_LEFT: usize = 23;
    pub const MOUTH_SMILE_RIGHT: usize = 24;
    pub const MOUTH_DIMPLE_LEFT: usize = 27;
    pub const MOUTH_DIMPLE_RIGHT: usize = 28;
    pub const MOUTH_STRETCH_LEFT: usize = 29;
    pub const MOUTH_STRETCH_RIGHT: usize = 30;
    pub const MOUTH_ROLL_LOWER: usize = 31;
    pub const MOUTH_ROLL_UPPER: usize = 32;
    pub const MOUTH_SHRUG_UPPER: usize = 34;
    pub const MOUTH_PRESS_LEFT: usize = 35;
    pub const MOUTH_PRESS_RIGHT: usize = 36;
    pub const MOUTH_LOWER_DOWN_LEFT: usize = 37;
    pub const MOUTH_LOWER_DOWN_RIGHT: usize = 38;
    pub const MOUTH_UPPER_UP_LEFT: usize = 39;
    pub const MOUTH_UPPER_UP_RIGHT: usize = 40;
    pub const BROW_INNER_UP: usize = 43;
    pub const BROW_OUTER_UP_LEFT: usize = 44;
    pub const BROW_OUTER_UP_RIGHT: usize = 45;
    pub const TONGUE_OUT: usize = 51;
    pub const HEAD_ROLL: usize = 52;
}

/// The mouth pose of Azure viseme `id` (silence and unknown ids: the mouth at rest, all zero).
pub fn pose(id: u8) -> Frame {
    use at::*;
    let mut f = [0.0; COUNT];
    let mut set = |values: &[(usize, f32)]| {
        for &(i, v) in values {
            f[i] = v;
        }
    };
    let pair = |l: usize, r: usize, v: f32| [(l, v), (r, v)];
    let stretch = |v| pair(MOUTH_STRETCH_LEFT, MOUTH_STRETCH_RIGHT, v);
    let lower = |v| pair(MOUTH_LOWER_DOWN_LEFT, MOUTH_LOWER_DOWN_RIGHT, v);
    let press = |v| pair(MOUTH_PRESS_LEFT, MOUTH_PRESS_RIGHT, v);
    let dimple = |v| pair(MOUTH_DIMPLE_LEFT, MOUTH_DIMPLE_RIGHT, v);
    let smile = |v| pair(MOUTH_SMILE_LEFT, MOUTH_SMILE_RIGHT, v);
    match id {
        // æ ə ʌ: open, relaxed.
        1 => set(&[&[(JAW_OPEN, 0.45)][..], &lower(0.25), &stretch(0.1)].concat()),
        // ɑ: wide open.
        2 => set(&[&[(JAW_OPEN, 0.65)][..], &lower(0.3)].concat()),
        // ɔ: open and rounded.
        3 => set(&[(JAW_OPEN, 0.45), (MOUTH_PUCKER, 0.5), (MOUTH_FUNNEL, 0.3)]),
        // ɛ ʊ: half open, spread.
        4 => set(&[&[(JAW_OPEN, 0.35)][..], &stretch(0.3), &dimple(0.3)].concat()),
        // ɝ: rounded, a little open.
        5 => set(&[(JAW_OPEN, 0.25), (MOUTH_PUCKER, 0.45), (MOUTH_FUNNEL, 0.2)]),
        // i ɪ j: nearly closed, spread.
        6 => set(&[&[(JAW_OPEN, 0.15)][..], &stretch(0.5), &smile(0.25), &dimple(0.3)].concat()),
        // u w: tight rounding.
        7 => set(&[(JAW_OPEN, 0.12), (MOUTH_PUCKER, 0.9), (MOUTH_FUNNEL, 0.4)]),
        // o: rounded, jaw forward.
        8 => set(&[(JAW_OPEN, 0.35), (MOUTH_PUCKER, 0.7), (MOUTH_FUNNEL, 0.5), (JAW_FORWARD, 0.2)]),
        // aʊ, ɔɪ, aɪ: their opening vowel.
        9 => set(&[(JAW_OPEN, 0.55), (MOUTH_PUCKER, 0.35), (MOUTH_FUNNEL, 0.2)]),
        10 => set(&[(JAW_OPEN, 0.4), (MOUTH_PUCKER, 0.5)]),
        11 => set(&[&[(JAW_OPEN, 0.55)][..], &stretch(0.25)].concat()),
        // h: breath through an open mouth.
        12 => set(&[&[(JAW_OPEN, 0.3)][..], &lower(0.15)].concat()),
        // ɹ: rounded.
        13 => set(&[(JAW_OPEN, 0.2), (MOUTH_PUCKER, 0.5), (MOUTH_FUNNEL, 0.3)]),
        // l: tongue up behind the teeth, seen in an open mouth.
        14 => set(&[&[(JAW_OPEN, 0.25), (TONGUE_OUT, 0.15)][..], &lower(0.2)].concat()),
        // s z: teeth together, lips spread.
        15 => set(&[&[(JAW_OPEN, 0.08)][..], &stretch(0.35), &press(0.3), &lower(0.3)].concat()),
        // ʃ tʃ dʒ ʒ: lips pushed out.
        16 => set(&[(JAW_OPEN, 0.15), (MOUTH_PUCKER, 0.55), (MOUTH_FUNNEL, 0.55)]),
        // ð: tongue between the teeth.
        17 => set(&[(JAW_OPEN, 0.18), (TONGUE_OUT, 0.45), (MOUTH_ROLL_UPPER, 0.2)]),
        // f v: lower lip under the upper teeth.
        18 => set(&[
            &[(JAW_OPEN, 0.08), (MOUTH_ROLL_LOWER, 0.7), (MOUTH_SHRUG_UPPER, 0.3)][..],
            &pair(MOUTH_UPPER_UP_LEFT, MOUTH_UPPER_UP_RIGHT, 0.15),
        ]
        .concat()),
        // t d n θ: tongue on the ridge, mouth slightly open.
        19 => set(&[&[(JAW_OPEN, 0.18), (TONGUE_OUT, 0.05)][..], &press(0.25), &lower(0.2)].concat()),
        // k g ŋ: back of the tongue, mouth open.
        20 => set(&[&[(JAW_OPEN, 0.25)][..], &lower(0.25), &stretch(0.15)].concat()),
        // p b m: lips closed and pressed.
        21 => set(&[&[(MOUTH_CLOSE, 0.2), (MOUTH_ROLL_LOWER, 0.3), (MOUTH_ROLL_UPPER, 0.3)][..], &press(0.6)].concat()),
        _ => {}
    }
    f
}

/// How strongly viseme `id` holds its shape against its neighbours (co-articulation): lip
/// closures and the lip-to-teeth contact must be reached, `h` takes the shape of what follows.
pub fn dominance(id: u8) -> f32 {
    match id {
        21 => 4.0,
        18 => 3.0,
        16 | 17 => 1.6,
        15 => 1.4,
        7 | 8 => 1.3,
        0 => 0.8,
        12 => 0.3,
        19 | 20 => 0.7,
        _ => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_azure_s_order() {
        assert_eq!(index("eyeBlinkLeft"), Some(0));
        assert_eq!(index("eyeBlinkRight"), Some(7));
        assert_eq!(index("jawOpen"), Some(at::JAW_OPEN));
        assert_eq!(index("mouthClose"), Some(at::MOUTH_CLOSE));
        assert_eq!(index("tongueOut"), Some(at::TONGUE_OUT));
        assert_eq!(index("headRoll"), Some(at::HEAD_ROLL));
        assert_eq!(index("rightEyeRoll"), Some(54));
        assert_eq!(index("browInnerUp"), Some(at::BROW_INNER_UP));
        assert_eq!(index("mouthShrugUpper"), Some(at::MOUTH_SHRUG_UPPER));
        let unique: std::collections::HashSet<&str> = NAMES.iter().copied().collect();
        assert_eq!(unique.len(), COUNT);
    }

    #[test]
    fn poses_open_vowels_and_close_bilabials() {
        assert!(pose(2)[at::JAW_OPEN] > pose(6)[at::JAW_OPEN], "ɑ opens more than i");
        assert_eq!(pose(21)[at::JAW_OPEN], 0.0, "p b m close the mouth");
        assert!(pose(7)[at::MOUTH_PUCKER] > 0.8, "u rounds the lips");
        assert!(pose(17)[at::TONGUE_OUT] > 0.3, "ð shows the tongue");
        assert!(pose(0).iter().all(|v| *v == 0.0));
        for id in 0..=21 {
            assert!(pose(id).iter().all(|v| (0.0..=1.0).contains(v)), "{id}");
        }
    }
}
