"""Script screening on the folded text: look-alike letters, invisible characters, leetspeak and
paraphrases are caught; ordinary personal messages pass."""
import pytest

from avatar.domain.scripts import ScriptRefused, screen, skeleton

POLITICAL = [
    "v\u043ete for Smith on Sunday",  # Cyrillic o
    "V\u200bote for Smith",  # zero-width space
    "Ｖｏｔｅ for Smith",  # fullwidth
    "𝐕𝐨𝐭𝐞 for Smith",  # mathematical bold
    "Vöte for Smith",
    "v0te for Smith this week",
    "Put your cross next to Smith on Thursday.",
    "Make your mark beside Jane Doe's name.",
    "Head down to the polls and back Jane.",
    "Re-elect Mayor Brown!",
    "Give her your support this Thursday at the polling station.",
    "Support the Green Party at the next election.",
]
MARKETING = [
    "Use my code ANNA for 20 % off",
    "Grab half off everything this week only",
    "Check out the new products from my favourite brand",
    "\u041erder n\u043ew while stocks last",  # Cyrillic O and o
    "Link in my bio for the deal of the day",
]
DENIALS = [
    "Nothing here was made by artificial intelligence.",
    "This isn't A.I., it's really me.",
    "This is n\u043et AI at all",
    "I am a real person and this is the real me.",
    "This is 100% authentic, no AI was used.",
    "I recorded this myself, completely unedited.",
    "No deep fake here, promise.",
    "Made with a computer? Never.",
    "This is an authentic recording of me.",
]
BENIGN = [
    "Happy birthday, Anna! See you at the party.",
    "Hello, this is a note for my sister. See you on Sunday for lunch.",
    "Thanks for joining the team meeting today; the slides are in the shared folder.",
    "I'm sorry I can't make it tonight. Let's meet next week instead.",
    "Good luck with your exams, you will do brilliantly.",
    "The train leaves at 7:40 from platform 3, don't be late!",
    "Merry Christmas and a happy new year to all of you.",
    "I have not yet edited the photos from the trip, but they are lovely.",
    "Please water the plants while I'm away; the key is under the mat.",
]


@pytest.mark.parametrize("text", POLITICAL)
def test_political_paraphrases_need_the_political_purpose(text):
    with pytest.raises(ScriptRefused, match="political"):
        screen(text, "personal")
    assert screen(text, "political")


@pytest.mark.parametrize("text", MARKETING)
def test_advertising_paraphrases_need_the_marketing_purpose(text):
    with pytest.raises(ScriptRefused, match="marketing"):
        screen(text, "personal")
    assert screen(text, "marketing")


@pytest.mark.parametrize("text", DENIALS)
def test_denials_of_being_synthetic_are_refused_for_every_purpose(text):
    for purpose in ("personal", "marketing", "political"):
        with pytest.raises(ScriptRefused, match="not AI"):
            screen(text, purpose)


@pytest.mark.parametrize("text", BENIGN)
def test_ordinary_messages_pass(text):
    assert screen(text, "personal")


def test_skeleton_folds_lookalikes_accents_and_case():
    assert skeleton("V\u043eTE\u200b Fór  Smith.") == "vote for smith"
    assert skeleton("re-elect") == "re elect"
