"""Write data/support_tickets_multilabel.csv and data/ticket_pairs.csv from hand-written building blocks (seeded).

Every sentence below was written for this project; the only other input is data/support_tickets.csv (also written
for this project). Run `python data/make_extra_sets.py` from the repository root: the same seed writes the same files.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pandas as pd

SEED = 19
HERE = Path(__file__).resolve().parent
LABELS = ["delivery", "refund", "account", "product", "praise"]

# One entry per problem a customer can report: (label, problem, sentences that report it, replies that answer it).
# The sentences carry the request; several of them avoid the class's give-away words on purpose.
PROBLEMS: list[tuple[str, str, list[str], list[str]]] = [
    ("delivery", "late", [
        "My parcel is a week late.",
        "The order I placed on the 3rd still hasn't turned up.",
        "Still waiting for my books, it's been twelve days.",
        "the puzzle hasn't arrived yet and you promised Tuesday",
        "Could you chase the courier? My board game is overdue.",
        "It was meant to be here for the weekend and it's Wednesday now.",
        "Ten days on and my order is still not here.",
        "Whatever I bought from you is running very behind schedule.",
    ], [
        "I've chased the courier: your parcel was held at their depot and will reach you within two working days.",
        "Sorry for the wait. The order left our warehouse late; it is now on the van and due tomorrow.",
    ]),
    ("delivery", "lost", [
        "Tracking says delivered but there's nothing at my door.",
        "The courier claims they left it with a neighbour, none of my neighbours have it.",
        "My order seems to have vanished somewhere between you and me.",
        "the box never came, the app says it was handed over yesterday",
        "Nobody here received the parcel that was marked as delivered.",
        "The parcel was signed for by someone, but it wasn't me and I don't have it.",
    ], [
        "The courier could not show where they left it, so we've opened a lost-parcel claim, sending a new one today.",
        "I'm sorry it went missing. A replacement parcel goes out this afternoon, at no cost to you.",
    ]),
    ("delivery", "damaged", [
        "The box arrived crushed and the game pieces are all over the place, please send another.",
        "My book came soaked from the rain, could you post a fresh copy?",
        "The parcel was torn open when it got here and half of it is missing, can you resend it?",
        "The jigsaw box was split down one side on arrival. A new one please.",
        "Everything inside was broken when the courier handed it over, I'd like a new one sent.",
        "The cover of the book was ripped in transit; please ship me an undamaged copy.",
    ], [
        "Sorry it arrived in that state. A fresh copy, packed in a stronger box, is on its way, due in two days.",
        "Thank you for the photos. We're resending the item today; no need to return the damaged one.",
    ]),
    ("delivery", "address", [
        "Can you send my order to my work address instead? It hasn't shipped yet.",
        "I typed the wrong house number at checkout, please fix it before it goes out.",
        "I've just moved, could the parcel go to my new flat?",
        "please deliver to 14 Elm Road not 41, my mistake",
        "Is it too late to change where my order is going?",
        "Wrong postcode on my order, can you correct it before dispatch?",
    ], [
        "Done: the order will now go to the new address you gave us. It leaves the warehouse tomorrow.",
        "I've corrected the house number on the order before it was packed, so it will reach the right door.",
    ]),
    ("delivery", "tracking", [
        "The tracking link hasn't moved in four days.",
        "Where is my parcel right now? The tracking page shows an error.",
        "My tracking number doesn't work on the courier's site.",
        "can u tell me where my order is, the link says nothing",
        "The courier's website has no record of my tracking code.",
        "No updates on the tracking for a week, where is it?",
    ], [
        "The courier's tracking was not updating. Your parcel is at the local depot, out for delivery tomorrow.",
        "Here is a working tracking number: NW-48213. The parcel is in transit and due on Thursday.",
    ]),
    ("refund", "charged_twice", [
        "I was charged twice for the same order.",
        "My bank shows two payments of £24.99 for one book.",
        "You took the money two times, please give one back.",
        "u charged me 2x for the same game pls sort",
        "There's a duplicate payment on my card from your shop.",
        "The same purchase went through on my card twice.",
    ], [
        "You're right, the payment went through twice. The second charge has been refunded and will show in 3-5 days.",
        "Sorry about the double payment. I've reversed the extra £24.99; your bank will show it within a week.",
    ]),
    ("refund", "return", [
        "I'd like to return the novel, it's not for me. How do I get my money back?",
        "The game was a gift nobody wanted, can I send it back for a refund?",
        "I want my money back for the puzzle, it's unopened.",
        "How do I return something and get paid back?",
        "If I post the board game back to you, will I be reimbursed?",
        "Can I send the book back? I'd like the money returned.",
    ], [
        "Of course. Print the return label from your orders page; we refund you as soon as the parcel reaches us.",
        "Returns are free within 30 days. Once the item is back with us the money goes back to your card.",
    ]),
    ("refund", "cancel", [
        "Please cancel my order, I ordered by mistake.",
        "I don't need the books anymore, cancel it and refund me.",
        "Can I still cancel? I only ordered an hour ago.",
        "stop the order please, bought the wrong thing",
        "I changed my mind, please don't send the order.",
        "Undo my purchase from this morning, I clicked buy by accident.",
    ], [
        "Your order is cancelled before it shipped, and the payment has been refunded in full.",
        "I caught it in time: the order is cancelled and you will not be charged.",
    ]),
    ("refund", "wrong_item", [
        "You sent me the wrong book and I'd rather have my money back than wait.",
        "I ordered the deluxe edition and got the basic one, I want the difference refunded.",
        "This is not the game I paid for. Refund please, I'm not interested in a swap.",
        "Got a cookbook instead of the atlas I bought. Just give me my money.",
        "The parcel had someone else's book in it, not mine. I'd like my money returned.",
        "Wrong game in the box. Please refund me rather than replace it.",
    ], [
        "Sorry for the mix-up. Keep the item you received; we've refunded what you paid for the one you ordered.",
        "We've refunded the price difference between the deluxe and the basic edition to your card.",
    ]),
    ("refund", "discount", [
        "My discount code wasn't applied, so I paid full price. Please refund the difference.",
        "The sale price was £15 but I was charged £22.",
        "I was billed for express shipping that I didn't choose.",
        "the 20% off code didnt work at checkout and I paid too much",
        "I should have got the sale price, not the full one, please pay back the difference.",
        "The voucher code was rejected at checkout so I overpaid.",
    ], [
        "The code should have applied. I've refunded the 20% to your card; it will show in a few days.",
        "You were charged for express shipping by mistake. That amount is now refunded.",
    ]),
    ("account", "login", [
        "I can't log in to my account.",
        "The password reset email never arrives.",
        "My account is locked after too many attempts.",
        "cant sign in since the update, says wrong password but its right",
        "The login page keeps sending me back to the start.",
        "It won't let me into my profile however many times I try.",
    ], [
        "I've unlocked your account and sent a new password reset link; it is valid for one hour.",
        "The reset emails were going to your old address. I've sent a fresh link to the address on your profile.",
    ]),
    ("account", "email", [
        "How do I change the email address on my profile?",
        "I need to update my phone number in my account.",
        "Please change my account email to the new one I'm writing from.",
        "my profile still has my maiden name, how do i change it",
        "I've got a new email address, can you put it on my profile?",
        "How can I update the contact details you hold for me?",
    ], [
        "You can change your email and phone number under Profile > Details; I've updated the email for you this time.",
        "Your profile now shows the new email address. Please confirm it with the link we just sent.",
    ]),
    ("account", "newsletter", [
        "Please stop sending me the newsletter.",
        "I keep getting marketing emails even though I unsubscribed.",
        "How do I turn off the daily app notifications?",
        "take me off your mailing list",
        "Unsubscribe me from all your promotional emails please.",
        "I never signed up for your marketing messages, make them stop.",
    ], [
        "You're unsubscribed from all marketing emails; it can take up to 48 hours for the last ones to stop.",
        "Notifications can be switched off under Settings > Notifications. I've turned off the marketing ones for you.",
    ]),
    ("account", "delete", [
        "Please delete my account and everything you hold about me.",
        "I want my personal data removed from your systems.",
        "How do I close my account for good?",
        "I'd like you to forget I ever shopped here.",
        "Remove my profile from your shop completely.",
        "Erase all the personal information you have on me, please.",
    ], [
        "Your account and personal data will be deleted within 30 days; we'll email you when it is done.",
        "I've started the deletion of your account. You'll get a confirmation email once everything is removed.",
    ]),
    ("account", "gift_card", [
        "How much is left on my gift card?",
        "My gift card balance doesn't show in my wallet.",
        "I added a voucher to my account but the credit isn't there.",
        "whats the balance on card number 6011 2233",
        "I can't see the credit from my voucher anywhere in my account.",
        "Can you check what's still on my gift voucher?",
    ], [
        "Your gift card has £18.40 left, and it now shows in the wallet of your account.",
        "The voucher was added to the wrong account. I've moved the credit to yours; it is there now.",
    ]),
    ("product", "edition", [
        "Does the sequel come in hardback?",
        "Is there a large-print edition of this novel?",
        "Is the e-book the same translation as the paperback?",
        "Which edition of the atlas is the newest one?",
        "Is this novel also published as a hardcover?",
        "Has the translation in the e-book changed from the printed one?",
    ], [
        "Yes, the sequel is out in hardback and paperback; the hardback has the same cover design as book one.",
        "There is a large-print edition, published last spring; you'll find it under the Formats tab of the novel.",
    ]),
    ("product", "age", [
        "What age is the dinosaur puzzle suitable for?",
        "Is this board game OK for a six-year-old?",
        "would the science kit be too hard for my 8 year old",
        "Is the picture book right for a toddler?",
        "Would a five-year-old be able to do this jigsaw?",
        "What's the recommended age for the science kit?",
    ], [
        "The puzzle is made for ages 5 and up: large pieces and no small parts.",
        "The game says 8+, but most six-year-olds manage it with an adult reading the cards.",
    ]),
    ("product", "stock", [
        "When will the strategy game be back in stock?",
        "Do you have the third volume in stock?",
        "Is the limited box set still available?",
        "any chance the sold out puzzle comes back",
        "Will you be getting more of the sold-out box set?",
        "Is volume three available to order right now?",
    ], [
        "The strategy game is back in stock on the 14th; you can sign up on its page to be emailed that day.",
        "Volume three is in stock and ships the same day if you order before 2 pm.",
    ]),
    ("product", "recommendation", [
        "Can you recommend a cooperative game for four players?",
        "What would you suggest for a teenager who loves fantasy?",
        "Looking for a 1000-piece puzzle that isn't too hard. Ideas?",
        "What's a good first crime novel for someone new to the genre?",
        "Which game would you suggest for a family of four who like to play as a team?",
        "My niece reads nothing but fantasy, what should I buy her?",
    ], [
        "For four players who like to work together, Forbidden Island and Pandemic are our best sellers.",
        "Teen fantasy readers love the Skyward series; the first book is also in our three-for-two offer.",
    ]),
    ("praise", "fast", [
        "Thank you, the order came the day after I placed it!",
        "Amazingly quick delivery, well done.",
        "Super fast shipping, I'm impressed.",
        "It came so quickly, brilliant service!",
        "Ordered on Monday, here on Tuesday, very impressive.",
    ], [
        "Thank you for the kind words! We've passed them on to the warehouse team.",
    ]),
    ("praise", "service", [
        "Your support team was so helpful last week, thank you.",
        "Lovely shop, I always get great service from you.",
        "Really pleased with how you looked after me.",
        "You folks are the best bookshop online.",
        "Whoever answered my email last week was wonderful.",
        "I've always been treated well by your team.",
    ], [
        "That is lovely to hear, thank you for taking the time to write to us.",
    ]),
    ("praise", "packaging", [
        "The books were wrapped beautifully, thanks.",
        "Great packaging, not a single dent on the box.",
        "The gift wrap was gorgeous, my mum loved it.",
        "Everything arrived so nicely packed, thank you.",
        "Lovely wrapping and no damage at all, well done.",
    ], [
        "Thank you! We'll tell the packing team, they'll be delighted.",
    ]),
]

# Sentences that name a topic's words without asking for anything about it: a label-free mention (hard negatives).
MENTIONS: dict[str, list[str]] = {
    "delivery": ["The parcel itself came on time.", "Delivery was fine, no issue there.",
                 "The courier was quick, that's not the problem.", "It arrived, so no need to chase the parcel.",
                 "Tracking isn't the question."],
    "refund": ["I don't want a refund.", "No need for money back.", "I'm not asking to return anything.",
               "Keep the money, that's not why I'm writing.", "The payment went through fine."],
    "account": ["My login works fine.", "Nothing's wrong with my account.", "My password isn't the issue.",
                "I'm happy to stay on the newsletter.", "You can keep my email on file."],
    "product": ["I know which edition I want.", "No questions about the game itself.",
                "I'm not after a recommendation.", "It's in stock, I checked."],
    # courtesy is not a compliment: "thanks in advance" asks for nothing and praises nothing
    "praise": ["Thanks in advance.", "Thank you for looking into it.", "Cheers.", "Thanks, hope you can help."],
}

JOINERS = [" Also, ", " And ", " On top of that, ", " Separately, ", " Plus ", " Another thing: ", " "]
GREETINGS = ["", "", "", "Hi. ", "Hello! ", "Hi there. ", "Good morning. "]
# Compliment words: a hand-written single-label ticket that has one may also praise, so it is left out here.
PRAISE_WORDS = re.compile(r"\b(?:thank|thanks|great|love|lovely|brilliant|perfect|happy|excellent|fantastic|wonderful|"
                          r"amazing|cheers|appreciate|impress|grateful|star|pleased|well done|superb|kind)", re.I)


def lower_first(sentence: str) -> str:
    """Lower-case a sentence's first letter for use after a joining word, except the pronoun I."""
    if re.match(r"I\b|I'", sentence):
        return sentence
    return sentence[:1].lower() + sentence[1:]


def join(sentences: list[str], rng: random.Random) -> str:
    """Join sentences into one message with varied connectives."""
    text = sentences[0]
    for sentence in sentences[1:]:
        joiner = rng.choice(JOINERS)
        text += ("" if text[-1] in ".?!" else ".") + joiner
        text += sentence if joiner.endswith(": ") or not joiner.strip() else lower_first(sentence)
    return rng.choice(GREETINGS) + text


def problem_sentence(problem, rng: random.Random) -> str:
    return rng.choice(problem[2])


def hand_written_single(rng: random.Random, n: int, praise: int) -> list[tuple[str, str]]:
    """Sample single-label tickets from support_tickets.csv, `praise` of them praise; others with a compliment word are
    left out (in the single-label file a thank-you beside a request takes the request's label)."""
    tickets = pd.read_csv(HERE / "support_tickets.csv").dropna().drop_duplicates("text")
    tickets = tickets[tickets["text"].str.strip().astype(bool)]
    is_praise = tickets["label"] == "praise"
    rows = list(tickets[~is_praise & ~tickets["text"].str.contains(PRAISE_WORDS)].itertuples(index=False, name=None))
    kind_words = list(tickets[is_praise].itertuples(index=False, name=None))
    rng.shuffle(rows)
    rng.shuffle(kind_words)
    return rows[:n] + kind_words[:praise]


def multilabel_rows(rng: random.Random) -> list[tuple[str, str]]:
    """Return (text, 'label;label') rows: hand-written singles, template singles, mentions, pairs and triples.

    `praise` is the rare label (about 2.5 % of the texts): a compliment is rare beside the requests a desk gets.
    """
    by_label = {label: [p for p in PROBLEMS if p[0] == label] for label in LABELS}
    common = [label for label in LABELS if label != "praise"]
    rows = [(text, label) for text, label in hand_written_single(rng, 500, praise=14)]
    for _ in range(300):  # one problem, sometimes beside a label-free mention of another topic (a hard case)
        problem = rng.choice([p for p in PROBLEMS if p[0] != "praise"])
        parts = [problem_sentence(problem, rng)]
        if rng.random() < 0.7:
            other = rng.choice([label for label in MENTIONS if label != problem[0]])
            parts.insert(rng.randrange(2), rng.choice(MENTIONS[other]))
        rows.append((join(parts, rng), problem[0]))
    for size, count, with_praise in ((2, 560, 18), (3, 110, 8)):
        for i in range(count):
            labels = [*rng.sample(common, size - 1), "praise"] if i < with_praise else rng.sample(common, size)
            rng.shuffle(labels)
            parts = [problem_sentence(rng.choice(by_label[label]), rng) for label in labels]
            if rng.random() < 0.4:  # a mention of a topic the message does not ask about
                other = rng.choice([label for label in MENTIONS if label not in labels])
                parts.insert(rng.randrange(len(parts) + 1), rng.choice(MENTIONS[other]))
            rows.append((join(parts, rng), ";".join(sorted(labels, key=LABELS.index))))
    tickets = hand_written_single(rng, 10_000, praise=0)
    for _ in range(80):  # two hand-written tickets of different labels, one after the other
        first, second = rng.sample(tickets, 2)
        if first[1] != second[1]:
            rows.append((join([first[0], second[0]], rng), ";".join(sorted({first[1], second[1]}, key=LABELS.index))))
    return rows


def content_words(text: str) -> set[str]:
    """Return a text's lower-cased words of three letters or more, less English stop words (what TF-IDF can match)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return {word for word in re.findall(r"[a-z']{3,}", text.lower()) if word not in ENGLISH_STOP_WORDS}


def pair_rows(rng: random.Random, used: set[str]) -> list[tuple[str, str, str, str]]:
    """Return (first, second, kind, label) rows: do two hand-written messages go to the same team (the same label)?

    The messages are the single-label file's requests (no `praise`) that the multi-label file does not contain, each in
    one pair only, so no text is shared between pairs, splits, or the two files. About 45 % of pairs share the team.
    The kind says whether the two texts share a content word: shared words where the teams differ, and none where they
    are the same, are the traps for a model that matches words.
    """
    tickets = pd.read_csv(HERE / "support_tickets.csv").dropna().drop_duplicates("text")
    tickets = tickets[tickets["text"].str.strip().astype(bool) & (tickets["label"] != "praise")]
    by_label: dict[str, list[str]] = {}
    for text, label in tickets.itertuples(index=False, name=None):
        if text not in used:
            by_label.setdefault(label, []).append(text)
    for texts in by_label.values():
        rng.shuffle(texts)
    rows = []
    while True:
        same = rng.random() < 0.45
        ready = [label for label, texts in by_label.items() if len(texts) >= (2 if same else 1)]
        if len(ready) < (1 if same else 2):
            break
        first_label, second_label = (rng.choice(ready),) * 2 if same else rng.sample(ready, 2)
        first, second = by_label[first_label].pop(), by_label[second_label].pop()
        shared = "shared_words" if content_words(first) & content_words(second) else "no_shared_words"
        team = "same_team" if same else "different_team"
        rows.append((first, second, f"{team}, {shared}", team))
    return rows


def main() -> None:
    rng = random.Random(SEED)
    tickets = pd.DataFrame(multilabel_rows(rng), columns=["text", "labels"]).drop_duplicates("text")
    tickets.sample(frac=1, random_state=SEED).to_csv(HERE / "support_tickets_multilabel.csv", index=False)
    # A hand-written ticket inside a multi-label text (alone or joined to another) is not reused for a pair.
    single = pd.read_csv(HERE / "support_tickets.csv").dropna()["text"]
    used = {text for text in single if any(text in joined for joined in tickets["text"])}
    pairs = pd.DataFrame(pair_rows(rng, used), columns=["first", "second", "kind", "label"])
    pairs = pairs.drop_duplicates(["first", "second"]).sample(frac=1, random_state=SEED)
    pairs.to_csv(HERE / "ticket_pairs.csv", index=False)
    print(f"{len(tickets)} multi-label tickets, {len(pairs)} pairs")


if __name__ == "__main__":
    main()
