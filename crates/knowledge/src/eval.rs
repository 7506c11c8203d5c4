//! Retrieval quality: spoken-style questions about the retail agent's documents, each with the
//! document that answers it, and the measure used by the tests and the benchmark.

use crate::KnowledgeBase;

/// (question, the document that answers it).
pub const RETAIL_QUESTIONS: &[(&str, &str)] = &[
    ("how long do I have to send something back", "returns-policy.md"),
    ("can I return a dress I bought three weeks ago if I haven't worn it", "returns-policy.md"),
    ("is there a fee for the return label", "returns-policy.md"),
    ("can I return earrings", "returns-policy.md"),
    ("when will I get my money back", "refunds.md"),
    ("I returned something last week, when does the refund show up on my card", "refunds.md"),
    ("do you refund the shipping cost", "refunds.md"),
    ("can I swap my jeans for a bigger size", "exchanges.md"),
    ("I want the same top in a different colour", "exchanges.md"),
    ("the zipper on my coat broke after two months, what can you do", "quality-guarantee.md"),
    ("is there a warranty on your products", "quality-guarantee.md"),
    ("the seam on my shirt came apart", "quality-guarantee.md"),
    ("how long does delivery take", "shipping-times.md"),
    ("if I order today, when will it arrive", "shipping-times.md"),
    ("can I get it by tomorrow", "shipping-times.md"),
    ("my parcel hasn't moved for a week", "shipping-times.md"),
    ("how much is shipping", "shipping-costs.md"),
    ("is shipping free", "shipping-costs.md"),
    ("do you ship to Canada", "international-shipping.md"),
    ("will I have to pay customs duties if I live in the UK", "international-shipping.md"),
    ("where is my order", "order-tracking-and-changes.md"),
    ("can I cancel my order", "order-tracking-and-changes.md"),
    ("I put the wrong address on my order, can I change it", "order-tracking-and-changes.md"),
    ("do you take PayPal", "payment-methods.md"),
    ("can I pay in installments", "payment-methods.md"),
    ("my card was declined", "payment-methods.md"),
    ("do gift cards expire", "gift-cards-and-promotions.md"),
    ("can I use two discount codes on one order", "gift-cards-and-promotions.md"),
    (
        "the jacket I bought went on sale a few days later, can I get the difference back",
        "gift-cards-and-promotions.md",
    ),
    ("what size should I get if my chest is thirty eight inches", "apparel-size-guide.md"),
    ("how do I measure my waist", "apparel-size-guide.md"),
    ("I'm between two sizes, which one should I pick", "apparel-size-guide.md"),
    ("what size stockings should I get if I'm five foot six", "hosiery-and-socks-sizing.md"),
    ("what does denier mean", "hosiery-and-socks-sizing.md"),
    ("what size socks for a men's size ten shoe", "hosiery-and-socks-sizing.md"),
    ("can I put my down jacket in the dryer", "wool-and-winter-wear-care.md"),
    ("how do I wash a cashmere sweater", "wool-and-winter-wear-care.md"),
    ("my wool jumper has little balls on it", "wool-and-winter-wear-care.md"),
    ("how should I wash my bikini after the pool", "swimwear-care.md"),
    ("will the hot tub ruin my swimsuit", "swimwear-care.md"),
    ("does my suit need to be dry cleaned", "formal-wear-care-and-alterations.md"),
    ("can you shorten the trousers of my suit", "formal-wear-care-and-alterations.md"),
    ("my gym leggings smell even after washing", "active-wear-care.md"),
    ("can I use fabric softener on workout clothes", "active-wear-care.md"),
    ("how do I take care of my leather handbag", "accessories-and-leather-care.md"),
    ("my suede boots got muddy", "accessories-and-leather-care.md"),
    ("how do rewards points work", "loyalty-program.md"),
    ("what do I get as a gold member", "loyalty-program.md"),
    ("do you sell my personal information", "privacy.md"),
    ("how do I delete my account", "privacy.md"),
    ("what's your phone number", "contact-and-store-hours.md"),
    ("what time does the store open on Sunday", "contact-and-store-hours.md"),
    ("do you have a store in Chicago", "contact-and-store-hours.md"),
];

/// More questions, written after the chunking and scoring variants had been tried on
/// [`RETAIL_QUESTIONS`] (and the documents left unchanged since), to see how a choice carries
/// over to questions it was not tuned on. The variants' figures on these were seen before the
/// final choice (`bench/README.md`, issue 17), so they are not a pristine test set.
pub const RETAIL_HELD_OUT: &[(&str, &str)] = &[
    ("what's your return window", "returns-policy.md"),
    ("can I bring back an online order to one of your shops", "returns-policy.md"),
    ("are clearance items returnable", "returns-policy.md"),
    ("how many days until the refund hits my account", "refunds.md"),
    ("will I get the sales tax back", "refunds.md"),
    ("can I get store credit instead of a refund on my card", "refunds.md"),
    ("the medium is too small, can I trade it for a large", "exchanges.md"),
    ("can you send me the new size before you get the old one back", "exchanges.md"),
    ("my puffer coat is leaking feathers", "quality-guarantee.md"),
    ("what does your guarantee not cover", "quality-guarantee.md"),
    ("what's the cut off time for same day dispatch", "shipping-times.md"),
    ("will my order arrive before Christmas", "shipping-times.md"),
    ("how much does express delivery cost", "shipping-costs.md"),
    ("what's the minimum order for free delivery", "shipping-costs.md"),
    ("do you deliver to Australia", "international-shipping.md"),
    ("how long does shipping to Germany take", "international-shipping.md"),
    ("I want to add another item to the order I just placed", "order-tracking-and-changes.md"),
    ("I got someone else's sweater in my package", "order-tracking-and-changes.md"),
    ("do you accept American Express", "payment-methods.md"),
    ("when will my card be charged", "payment-methods.md"),
    ("can I buy a gift card for my sister", "gift-cards-and-promotions.md"),
    ("how do I check how much is left on my gift card", "gift-cards-and-promotions.md"),
    ("do you price match other stores", "gift-cards-and-promotions.md"),
    ("what size is a medium in inches", "apparel-size-guide.md"),
    ("do your cotton shirts shrink", "apparel-size-guide.md"),
    ("which tights size for someone who is five two and a hundred and ten pounds", "hosiery-and-socks-sizing.md"),
    ("how should I wash my tights", "hosiery-and-socks-sizing.md"),
    ("how do I stop moths eating my sweaters", "wool-and-winter-wear-care.md"),
    ("how often should I dry clean my wool coat", "wool-and-winter-wear-care.md"),
    ("can swimsuits go in the washing machine", "swimwear-care.md"),
    ("how do I get creases out of my evening gown", "formal-wear-care-and-alterations.md"),
    ("how long do alterations take", "formal-wear-care-and-alterations.md"),
    ("can I tumble dry my running tights", "active-wear-care.md"),
    ("when should I replace my sports bra", "active-wear-care.md"),
    ("my leather belt got soaked in the rain", "accessories-and-leather-care.md"),
    ("how do I clean a silk scarf", "accessories-and-leather-care.md"),
    ("how many points do I need for a reward", "loyalty-program.md"),
    ("do my points expire", "loyalty-program.md"),
    ("how do I stop getting your marketing emails", "privacy.md"),
    ("do you use cookies on the website", "privacy.md"),
    ("is customer service open on weekends", "contact-and-store-hours.md"),
    ("what's your email address", "contact-and-store-hours.md"),
];

/// How well a knowledge base answers a set of questions.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    /// Questions asked.
    pub questions: usize,
    /// Questions whose expected document gave the best passage.
    pub top1: usize,
    /// Questions whose expected document is among the first three distinct documents.
    pub top3: usize,
    /// One line per question whose expected document did not come first.
    pub misses: Vec<String>,
}

/// Asks each question and ranks the distinct documents of the first six passages.
pub fn evaluate(kb: &KnowledgeBase, questions: &[(&str, &str)]) -> Result<Evaluation, crate::KnowledgeError> {
    let mut e = Evaluation { questions: questions.len(), ..Evaluation::default() };
    for (q, expected) in questions {
        let found = kb.find(q, 6)?;
        let mut sources: Vec<&str> = Vec::new();
        for p in &found {
            if !sources.contains(&p.source.as_str()) {
                sources.push(&p.source);
            }
        }
        let rank = sources.iter().position(|s| s == expected);
        e.top1 += usize::from(rank == Some(0));
        e.top3 += usize::from(rank.is_some_and(|r| r < 3));
        if rank != Some(0) {
            let got: Vec<String> = found.iter().take(3).map(|p| format!("{} {:.3}", p.source, p.score)).collect();
            e.misses.push(format!(
                "{q:?}: expected {expected} (rank {}), got {}",
                rank.map_or("-".into(), |r| (r + 1).to_string()),
                got.join(", ")
            ));
        }
    }
    Ok(e)
}
