"""Final-answer extraction from model samples (no judging): multiple-choice letters and math answers."""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from generation.grading.boxes import HEDGE_NOTE, TEXT_WRAPPER, boxed_contents
from generation.grading.quantities import after_equals, stated_value

THINK_END = "</think>"
OUT_OF_RANGE_NOTE = "letter out of range"  # every note of a letter that names no option starts so
STATEMENT_CHARS = 300  # an option's text named in an answer statement is looked for this far
MARKDOWN = re.compile(r"\*{2,}|__|`+")
# Words for "answer" and "the answer is" in the languages of MMLU-style use (zh, es, fr, de, ru, ja, pt).
FOREIGN_ANSWER = (r"(?:正确答案|正確答案|答案|答え|正解|解答)\s*(?:是|为|為|は|：|:)|(?:故|因此|所以|应|應)选(?:择|擇)?"
                  r"|\b(?:la\s+)?respuesta(?:\s+correcta)?\s*(?:es\b|[:：])|\bopci[oó]n\s+correcta\s+es\b"
                  r"|\b(?:la\s+)?(?:bonne\s+)?r[ée]ponse(?:\s+correcte)?\s*(?:est\b|[:：])"
                  r"|\b(?:die\s+)?(?:richtige\s+)?antwort\s*(?:ist\b|lautet\b|[:：])|\bl[öo]sung\s*[:：]"
                  r"|(?<!\w)(?:правильный\s+)?ответ\s*(?:[:：—–-]|это\b)"
                  r"|\b(?:a\s+)?resposta(?:\s+correta)?\s*(?:é|[:：])|\balternativa\s+correta\s+é")
# A statement that announces the answer: "The answer is: X", "Answer: X", "the correct option is X", "Final Answer:",
# "The answer to this question is X", "I'll go with X", "it should be X", "which is option X", and FOREIGN_ANSWER.
# Singular only, so that a restated "Choices:\nA) ..." list is no statement;
# "option:"/"choice:" only at a line's start (letter on that line) or as "correct/best/final/my option:", so that
# "each option:\nA. ..." is none either; a "wrong answer is X" or "incorrect option is X" states no answer.
# Hedge words between the statement and its letter ("most likely", "I believe it's", "here") are skipped.
STATEMENT_SOURCE = (
    r"(?<!wrong\s)(?<!incorrect\s)(?<!tempting\s)(?:"
    r"\banswer\s*[:=：]|\b(?:correct|right|best|final|my)\s+(?:option|choice)\s*[:=：]"
    r"|(?<![^\n])[ \t]*(?:option|choice)[ \t]*[:=：](?![ \t]*\r?\n)"
    r"|\b(?:answer|option|choice)(?:\s+(?:here|in\s+this\s+case|to\s+(?:this|the)\s+(?:question|problem)))?"
    r"(?:\s*,\s*(?:I\s+(?:believe|think)|therefore|then|thus|of\s+course)\s*,)?"
    r"\s+(?:is|would\s+be|should\s+be|must\s+be|will\s+be|has\s+to\s+be|is\s+going\s+to\s+be)\b\s*[:：]?"
    r"|\banswer(?<=final answer)[ \t]*(?=\r?\n)"
    r"|\bI(?:['’]ll|['’]d|\s+will|\s+would|\s+am\s+going\s+to|['’]m\s+going\s+to|['’]m|\s+am)?"
    r"\s+(?:go(?:ing)?\s+with|choose|choosing|select|selecting|pick|picking|answer|opt\s+for|settle\s+on)\b"
    r"|\b(?:let['’]s|let\s+us|we['’]ll|we\s+will)\s+(?:go\s+with|choose|select|pick)\b|(?<![^\n])[ \t]*going\s+with\b"
    r"|\bmy\s+(?:pick|selection)\s*(?:[:：]|\bis\b)"
    r"|\b(?:it|that|this|the\s+answer)\s+(?:should|must|has\s+to)\s+be\b"
    r"|\b(?:(?:actually|wait|instead|rather|correction|on\s+second\s+thought|so|hmm)\b[,:;!.—–-]*"
    r"|no\b[,:;!.—–-]+)\s*"  # "No, B." (but "it has no C." names no answer)
    r"(?:(?:it|that)(?:['’]s|\s+is)\b)?(?=[\s(*]*\(?[A-Za-z]\)?[\s*)]*(?:[.!]|$))"
    r"|\bnot\s+(?:option\s+|choice\s+)?\(?[A-Z]\)?\s*[;,]?\s+(?!\(?[A-Z]\)?\s*(?:[,;]|or\b|and\b))"
    r"(?:but\s+)?(?:rather\s+)?"
    r"(?:(?:it|that)(?:['’]s|\s+is)\b)?"
    r"|\b(?:change|changing|switch|switching|revise|revising)\s+(?:my\s+)?(?:answer\s+)?to\b"
    r"|\b(?:i\.e\.|that\s+is|which\s+is|which\s+corresponds\s+to|corresponds\s+to|corresponding\s+to|matching|matches)"
    r"[,:]?\s+(?:option|choice|answer)\b(?=\s*\(?[A-Z]\)?[\s*)]*(?:[.,;!]|$))"
    r"|\b(?:which\s+is|corresponds\s+to|corresponding\s+to|i\.e\.,?)(?=\s*\([A-Z]\)[\s*]*(?:[.,;!]|$))"
    r"|\bclosest\b(?:(?!\b(?:wrong|incorrect|false)\b)(?:[^.\n]|\.(?=\d))){0,40}?\bis\b<FOREIGN>)"
    r"(?:\s*(?:therefore|thus|hence|clearly|most\s+likely|likely(?:\s+to\s+be)?|probably|almost\s+certainly"
    r"|definitely|indeed|then|here|actually|still|option|choice|letter|,|closest\s+to|nearest\s+to|approximately"
    r"|I\s+(?:believe|think|guess|would\s+say)(?:\s+(?:it['’]s|it\s+is|that))?|I['’]d\s+say|it['’]s|it\s+is)\b)*")
# "Option C is correct", "choice (B) is the right one"; "C is the correct answer", "(B) is the best option",
# "So B is correct", "Hence (C) is right" (counted only where committed: see QUALIFIED and UNCOMMITTED_AFTER).
LETTER_FIRST = re.compile(
    r"\b(?i:answer|option|choice)\s*\(?([A-Z])\)?\s+is\s+(?i:the\s+)?(?i:correct|right|best)\b"
    r"(?:\s+(?i:answer|option|choice|one)\b)?"
    r"|(?<![A-Za-z0-9'’-])\(?([A-Z])\)?\s+is\s+(?i:the\s+)?(?:(?i:(?:correct|right|best|final)\s+)?"
    r"(?i:answer|option|choice|one)\b|(?i:correct|right)\b)"
    r"|\b(?i:makes?|making)\s+(?:(?i:option|choice)\s+)?\(?([A-Z])\)?\s+(?i:the\s+(?:correct|right|best)\s+"
    r"(?:answer|option|choice))\b")
# What may come before a letter that opens "X is correct": a sentence start or a connective ("So", "Hence", "only",
# "the reason that (B) is the correct answer", "The statement (B) is correct").
LETTER_FIRST_BEFORE = re.compile(r"(?:^|[.,;:!?*(\n—–-]|\b(?:so|thus|hence|therefore|then|only|clearly|obviously"
                                 r"|means|option|choice|answer|letter|statement|that))[\s*]*\(?$", re.IGNORECASE)
# A statement only counts where it commits: not in a question, nor under a condition ("only when", "if") in its own
# sentence ("B only if x > 0", "C, if we ignore friction"; "B. If you want, I can explain." and "B If you want, ..."
# commit to B: a capital starts another sentence).
UNCOMMITTED_AFTER = re.compile(r"[^.!?\n]*\?|[ \t*)\]]*(?:,\s*)?(?:only\b|if\b|when\b|whenever\b|unless\b"
                               r"|provided\b|assuming\b|as\s+long\s+as\b|would\b|could\b|might\b)")
# An "X is correct" sentence that goes on to qualify it ("... in classical mechanics, but not here") before any
# "because" explains it.
QUALIFIED = re.compile(r"(?:(?!\b(?:because|since)\b)[^.!?\n])*?\b(?:only|if|when|whenever|unless|provided|assuming"
                       r"|except|but|though|although|whereas|for\s+an?)\b", re.IGNORECASE)
UNCOMMITTED_BEFORE = re.compile(r"\b(?:if|whether|suppose|supposing|assuming|unless)\b"
                                r"[^.!?\n]*$", re.IGNORECASE)
# Formatting that may sit between a statement and its letter: spaces, $, brackets, quotes, \boxed{, \text{..., the
# brace closing "\text{The answer is } (I)".
LETTER_PREFIX = re.compile(r"(?:[\s$(\[{}\"'~（「]|\\(?:boxed|text|textbf|mathrm|mathbf|fbox)\s*\{|\\[(\[])*")
# A letter standing alone: "B", "(b)"; not the start of a word ("A-B bond") nor a function or variable ("H(X)", "x_1").
LETTER = re.compile(r"([A-Za-z])(?![A-Za-z0-9'’_^({-])")
# Words that may follow a real answer letter; "A car"/"I think" after "The answer is" are an article/pronoun.
NEXT_WORD = re.compile(r" +([a-z]+)")
CONNECTORS = {"because", "since", "as", "and", "which", "is", "was", "for", "with", "given", "due", "from", "here",
              "in", "of", "this", "that", "the", "it", "so", "based", "per", "according", "option", "choice", "or",
              "porque", "pois", "car", "parce", "weil", "da", "denn", "ya", "puisque"}
# A letter rejected right after it: "A is wrong", "(G), but it's not correct". Example: " is wrong"
REJECTED = re.compile(r"[)\]]?(?:\s+(?:is\s+(?:incorrect|wrong|false|not)\b|isn['’]t\b)|,?\s*(?:but|though|although)\s+"
                      r"(?:it|this|that)(?:['’]s|\s+is)\s+not\s+(?:correct|right|close|even|the)\b)", re.IGNORECASE)
EQUATION_AFTER = re.compile(r"\s*=(?!=)")  # a letter that opens an equation is a variable. Example: " ="
BARE_LETTER = re.compile(r"[\s(\[{$*'\"]*[A-Za-z][\s)\]}.:$*'\"]*")  # "(I)" is a letter even if an option reads "I"
# The option text a model writes right after its letter: "(B) 6.2 eV.", "B) Paris**", "B: the mitochondria".
OPTION_TEXT_AFTER = re.compile(r"[ \t]*[).:\]]?[ \t]*[-–—:]?[ \t]*([^\n]{1,300}?)[ \t*.]*(?:\n|$)")
NAMED_WITH_LETTER = re.compile(r"(.+?)\s*\((?:(?i:option|choice)\s+)?([A-Z])\)")  # "Paris (B)", "$20.00 (Option C)"
AMBIGUOUS_TAIL = re.compile(r"[ \t]*[)\]}.*$]*[ \t]*(?:,|\(|\band\b|\bor\b|/|&)[ \t]*(?:(?:or|and|possibly|maybe"
                            r"|perhaps|also|alternatively|option|choice)\b[ \t]*)*(?:[(\[{$*][ \t]*)*([A-Z])"
                            r"(?![A-Za-z0-9])")
# "B, but C is also possible", "B, though D could be right": a second letter the statement leaves open.
HEDGE_TAIL = re.compile(r"[\s*)\].]*,?\s*(?:but|though|although|or)\s+(?:option\s+|choice\s+)?\(?([A-Z])\)?\s+"
                        r"(?:is|could|might|may|would)\s+(?:also|be|equally|possibly)\b", re.IGNORECASE)
# Words between two letters that leave the choice open ("B or D", "B/D", "B, possibly D"); "and", "," list them.
OPEN_CHOICE = re.compile(r"\bor\b|/|\b(?:possibly|maybe|perhaps|alternatively)\b", re.IGNORECASE)
# What makes "either B or D" a hedge between answers: an answer word before it in its sentence ("the answer is
# either B or D", "choose between A and C"), or "either" opening its sentence with its letters closing it or followed
# by "could be" ("It's either B or D.", "Either (A) or (C) could be correct"); "either A or B blood type" and "the
# bond between A and B." are none. Example: "the answer is "
EITHER_BEFORE = re.compile(r"\b(?:answer|option|choice|correct|choose|select|pick|go\s+with)\b[^.!?\n]*$",
                           re.IGNORECASE)
EITHER_OPENING = re.compile(r"(?:^|[.!?\n])[\s*]*(?:(?:so|then|hence|thus|therefore)[,\s]+)?"
                            r"(?:it['’]s\s+|it\s+is\s+)?$",
                            re.IGNORECASE)
EITHER_AFTER = re.compile(r"[\s*)]*(?:[.!](?!\w)|$|(?:could|might|may|would)\s+be\b|(?:is|are)\s+(?:correct|right"
                          r"|possible|likely)\b)", re.IGNORECASE)
EITHER = re.compile(r"\b(?i:either|between)\s+(?:option\s+|choice\s+)?\(?([A-Z])\)?\s+(?:or|and)\s+"
                    r"(?:option\s+|choice\s+)?\(?([A-Z])\)?(?![A-Za-z0-9])")  # "either B or D": a hedge
PART_VALUE = re.compile(r"[)\]}）][ \t]*[-−+=]?[ \t]*\d")  # "(a) 49 m/s": a part's label before its value
LETTER_LINE_END = re.compile(r"[\s.)\]}*]*(?:$|\n)")  # a lower-case letter counts where it ends its line
# A last line that is only a letter: "B", "(B).", "**C**"; an unclosed "(I" is a list cut off, not an answer.
ONLY_LETTER_LINE = re.compile(r"^[\s\[{$*]*(?:\(([A-Z])\)|([A-Z]))[\s)\]}.:$*]*$")
# A last line that labels an option's text: "B) Paris", "C. 4 m"; one ending in a colon opens a discussion of it.
LETTER_AND_TEXT_LINE = re.compile(r"^[\s(\[{$*]*([A-Z])[).:]\s+(.+?)(?<!:)$")
# A reply whose last sentence closes on a bracketed letter: "..., or (H).", "which is closest to (D).", "This is the
# definition of option (E).", "... is $20.00 (Option C)." (a full stop after that form); not where that sentence
# rules the letter out or names another one (FINAL_LETTER_AGAINST).
FINAL_LETTER = re.compile(r"(?:^|(?<=[.!?\n]))(?P<sentence>[^.!?\n]{0,300}?)"
                          r"(?:\((?:(?i:option|choice)\s+(?=[A-Z]\)[\s*]*[.!]))?"
                          r"(?P<letter>[A-Z])\)|\b(?i:option|choice)\s+(?P<bare>[A-Z])(?=[\s*]*[.!]))[\s*]*[.!]?[\s*]*\Z")
# What rules the final letter out: a negation just before it ("this contradicts (A).", "it cannot be (B)."; a
# negation further back belongs to the question's wording: "the one that is not ... is the ability to set prices
# (J).", and one turned by "but" is none: "not listed, but is closest to (G)."), a condition anywhere in its
# sentence, or another bracketed letter there. Example: "not "
FINAL_LETTER_AGAINST = re.compile(r"\b(?:not|no|never|cannot|can['’]t|isn['’]t|rules?\s+out|ruled\s+out|contradict\w*"
                                  r"|incorrect|wrong|false|eliminat\w*|except|exclud\w*|unlike|rather\s+than"
                                  r"|instead\s+of"
                                  r"|neither|nor)\b(?![^.!?\n]*\bbut\b)[^.!?\n]{0,30}$", re.IGNORECASE)
FINAL_LETTER_CONDITION = re.compile(r"\b(?:if|unless|whether)\b|\([A-Z]\)", re.IGNORECASE)
FINAL_LETTER_CHARS = 400  # the last sentence is looked for this far from the end
SHORT_REPLY = 150  # a one-line reply this short that opens with an option label is that option
NEGATED = re.compile(r"\b(?:not|wrong|incorrect|false|isn['’]t|but)\b", re.IGNORECASE)
# A \boxed{} holding a letter, alone or labelling text ("(B) Paris", "C. 4 m"); "E = mc^2" is no letter.
BOXED_LETTER = re.compile(r"[\s(\[]*[A-Z]\s*(?:[)\].:].*)?", re.DOTALL)
LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
DANGLING = re.compile(r"[-+*/^=,(]\s*$")
DISPLAY_OR_LINE = r"(\$\$[\s\S]{0,500}?\$\$|\\\[[\s\S]{0,500}?\\\]|.+)"  # a display block over lines, else the line
MATH_ANSWER_IS_SOURCE = (r"(?:answer\s+(?:is|should\s+be|must\s+be)(?:\s+actually)?\s*[:：]?|\banswer\s*[:：]"
                         r"<FOREIGN>)\s*" + DISPLAY_OR_LINE)
# The statement patterns without and with FOREIGN_ANSWER (slower: searched only where foreign_hint says so).
# (The lookahead on the first character only makes the regex engine skip faster: it matches where any branch can.)
STATEMENTS, MATH_ANSWER_IS = ({foreign: re.compile(r"(?=[^\W\d_]|[ \t\n])" + source.replace(
    "<FOREIGN>", "|" + FOREIGN_ANSWER if foreign else ""), re.IGNORECASE) for foreign in (False, True)}
                              for source in (STATEMENT_SOURCE, MATH_ANSWER_IS_SOURCE))
FOREIGN_WORDS = ("respuesta", "antwort", "resposta", "opcion", "alternativa", "reponse", "losung")
# The words an English STATEMENT can open with; in ASCII text it is tried only at these words and at line starts.
STATEMENT_OPENERS = frozenset(
    ["answer", "correct", "right", "best", "final", "my", "option", "choice", "i", "let", "we", "going", "it",
     "that", "this", "the", "actually", "wait", "no", "instead", "rather", "correction", "on", "so", "hmm", "not",
     "change", "changing", "switch", "switching", "revise", "revising", "which", "corresponds", "corresponding",
     "matching", "matches", "closest"])
ASCII_WORD = re.compile(r"[A-Za-z]+")
NEWLINE = re.compile(r"\n")
# Words that open no answer: "the answer is correct", "the answer is in the form ...", "the answer is a fraction".
NOT_AN_ANSWER = re.compile(r"(?:in|a|an|the|that|this|not|correct|right|wrong|consistent|reasonable|valid|indeed"
                           r"|confirmed|verified|plausible|likely|unique|independent|given|expressed|written|as|to"
                           r"|of|for|above|below|same|different|undefined|exactly|what|also|still)\b", re.IGNORECASE)
QUESTION = re.compile(r"[^.!?\n]*\?")  # "Is the answer 12 or 13?" states no answer
# A last line that concludes without a box: "Therefore, $x = 5$.", "So the total is 42 square units."
CONCLUSION = re.compile(r"(?:therefore|thus|hence|so|finally|in\s+conclusion|in\s+total|altogether)\b[^$\n]{0,120}?"
                        r"(\$\$?[^$\n]{1,200}\$\$?|\\\([^\n]{1,200}?\\\)|(?<![\w.])-?\d[\d,]*(?:\.\d+)?)"
                        r"([ \t]+[A-Za-z]+(?:[ \t]+[A-Za-z]+)?)?[ \t]*[.!]?[ \t]*", re.IGNORECASE)
WORDS = re.compile(r"[A-Za-z]{3,}")
BARE_EQUATION = re.compile(r"[A-Za-z](?:_\{?\w+\}?)?\s*=[^=]*")  # "x = 5" may stand alone; "2 + 3 = 5" may not
# "Answer: x" / "**Final Answer:**" / a "## Final Answer" heading, with x on the same line or up to two lines below;
# [ \t] keeps it linear.
FINAL_ANSWER_LINE = re.compile(
    r"^[ \t]*(?:#+[ \t]*)?(?:final[ \t]+answer|answer)[ \t]*(?:[:：]|(?=\n))[ \t]*(?:\n[ \t]*){0,2}"
    + DISPLAY_OR_LINE, re.IGNORECASE | re.MULTILINE)
# $...$, $$...$$, \(...\), \[...\]; at most 1,000 characters each, so that unclosed ones cost linear time.
MATH_SPAN = re.compile(r"(?<!\\)\$\$(.{1,1000}?)(?<!\\)\$\$|(?<!\\)\$(.{1,1000}?)(?<!\\)\$|\\\((.{1,1000}?)\\\)"
                       r"|\\\[(.{1,1000}?)\\\]", re.DOTALL)
# Where the answer's sentence goes on to explain it: "5, since 2+3=5", "12 because ...".
CLAUSE = re.compile(r",?\s+(?:because|since|as|which|where|given)\b", re.IGNORECASE)
SENTENCE_END = re.compile(r"\.\s+(?=[A-Z])")
TRAILER = re.compile(r"\s*(?:I hope it is correct\.?|\.|,|;)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Choice:
    """A multiple-choice extraction: the letter (None if none found); ambiguous: the final statement cannot be read
    as one valid letter (several letters, a hedge, a letter out of range), with the reason in `note`."""

    letter: str | None
    ambiguous: bool = False
    note: str = ""


def is_hedge(note: str) -> bool:
    """Whether a reading's note says it offers several answers without choosing ("B or D", "3 or possibly 4")."""
    return note.startswith(HEDGE_NOTE)


def is_out_of_range(note: str) -> bool:
    """Whether a reading's note says its letter names no option ("letter out of range: E is not one of A-D")."""
    return note.startswith(OUT_OF_RANGE_NOTE)


def answer_segments(text: str) -> list[str]:
    """Where to look for the final answer: the text after the last </think> first, then the whole text."""
    if THINK_END in text:
        tail = text.rsplit(THINK_END, 1)[1]
        return [tail, text] if tail.strip() else [text]
    return [text]


def valid_letters(options: list | None, default: int = 4) -> str:
    """The answer letters of a question: one per option (A-J for ten), else A-D."""
    count = len(options) if options else default
    return "".join(chr(65 + i) for i in range(count))


@functools.lru_cache(maxsize=4096)
def normalize_option(text: str) -> str:
    """Option text reduced for comparison: no markup, case, punctuation at the ends or repeated spaces."""
    text = TEXT_WRAPPER.sub(r"\1", MARKDOWN.sub("", str(text)))
    return " ".join(text.replace("$", "").split()).strip(" .:;,!\"'()[]{}").lower()


def option_letter(text: str, normalized: list[str], letters: str) -> str | None:
    """The letter of the option whose (normalized) text `text` is exactly, if exactly one option matches."""
    wanted = normalize_option(text)
    hits = [letters[i] for i, option in enumerate(normalized[:len(letters)]) if wanted and option == wanted]
    return hits[0] if len(hits) == 1 else None


def named_option(text: str, normalized: list[str], letters: str) -> str | None:
    """The letter of the option a statement names by its text: "Paris", or "Paris (B)" when both agree."""
    labelled = NAMED_WITH_LETTER.fullmatch(text.strip().rstrip(".!"))
    if labelled and option_letter(labelled.group(1), normalized, letters) == labelled.group(2):
        return labelled.group(2)
    return option_letter(text, normalized, letters)


def option_by_value(text: str, normalized: list[str], letters: str) -> str | None:
    """The letter of the one option a stated value equals: the text after the last "=" of a calculation is an option's
    text ("$6! / 3! = 120$"), or its number equals the option's only number and its unit words, if any, open the
    option's unit ("approximately 385 meters" names the option "385.0"; "5.2 g" names "5.2g of Ni", never "5.2 cm")."""
    if "=" in text and (letter := option_letter(after_equals(text) or "", normalized, letters)):
        return letter
    value = stated_value(text)
    if value is None:
        return None
    hits = [letters[index] for index, option in enumerate(normalized[:len(letters)])
            if (offered := stated_value(option)) and offered[0] == value[0]
            and (not offered[1] or offered[1][:len(value[1])] == value[1])]
    return hits[0] if len(hits) == 1 else None


def letter_after(text: str, start: int, letters: str) -> Choice | None:
    """The answer letter right after a statement ending at `start`, honouring word boundaries and articles.

    A letter outside `letters` is an undecided choice (never a reason to fall back to an earlier statement);
    a statement left open ("B or possibly D", "B, but C is also possible") is undecided too.
    """
    prefix = LETTER_PREFIX.match(text, start)
    match = LETTER.match(text, prefix.end())
    if not match:
        return None
    letter = match.group(1)
    if letter.islower():  # "(b)" or a line-ending "answer: c" is an answer; "a car" is an article
        opened = any(c in prefix.group(0) for c in "([{（")
        if not (opened and text[match.end():match.end() + 1] in ")]}）" or LETTER_LINE_END.match(text, match.end())) \
                or PART_VALUE.match(text, match.end()):
            return None  # "(a) 49 m/s, (b) ..." labels a part's value
        letter = letter.upper()
    if REJECTED.match(text, match.end()) or UNCOMMITTED_AFTER.match(text, match.end()) \
            or EQUATION_AFTER.match(text, match.end()):  # "$I = \\frac{\\pi}{2}$" names a variable
        return None
    if letter in "AI":
        word = NEXT_WORD.match(text, match.end())
        if word and word.group(1) not in CONNECTORS:
            return None
    if letter not in letters:
        return Choice(None, True, f"{OUT_OF_RANGE_NOTE}: {letter} is not one of {letters[0]}-{letters[-1]}")
    for tail in (AMBIGUOUS_TAIL.match(text, match.end()), HEDGE_TAIL.match(text, match.end())):
        if tail and tail.group(1) in letters and tail.group(1) != letter:
            if tail.re is HEDGE_TAIL or OPEN_CHOICE.search(tail.group(0)):
                return Choice(None, True, f"{HEDGE_NOTE}: {letter} or {tail.group(1)}")
            return Choice(None, True, f"{HEDGE_NOTE}: {letter} and {tail.group(1)} (several letters)")
    return Choice(letter)


def letter_end(text: str, start: int, letter: str | None) -> int:
    """Where the first standalone `letter` (any case) from `start` on ends (`start` if there is none)."""
    for match in LETTER.finditer(text, start):
        if match.group(1).upper() == letter and (match.start() == 0 or not text[match.start() - 1].isalnum()):
            return match.end() + (text[match.end():match.end() + 1] in ")]}）")
    return start


def statement_text(text: str, start: int) -> str:
    """The words of a statement up to the end of its line or sentence (for matching an option's text)."""
    end = text.find("\n", start)
    line = text[start:end if end >= 0 else len(text)][:STATEMENT_CHARS]
    return re.split(r"(?<=[^\d\s])\.(?:\s|$)", line, maxsplit=1)[0]


def committed(text: str, position: int) -> bool:
    """Whether a statement at `position` is no question or condition ("if the answer is B", "whether C is ...")."""
    return not UNCOMMITTED_BEFORE.search(text, max(0, position - 200), position)


def foreign_hint(text: str) -> bool:
    """Whether a text may state its answer in another language (non-ASCII characters or a FOREIGN_WORDS word)."""
    if not text.isascii():
        return True
    lower = text.lower()
    return any(word in lower for word in FOREIGN_WORDS)


def matches_at(pattern: re.Pattern, text: str, positions: list[int]) -> list[re.Match]:
    """What pattern.finditer gives when every match must start at one of `positions` (ascending), found by trying
    only there (much faster than the regex engine trying every position of a long text)."""
    found: list[re.Match] = []
    end = 0
    for position in positions:
        if position >= end and (match := pattern.match(text, position)):
            found.append(match)
            end = max(match.end(), position + 1)
    return found


def statement_matches(text: str, start: int) -> list[re.Match]:
    """Every STATEMENT from `start` on (the foreign-language one where foreign_hint says so)."""
    if foreign_hint(text):
        return list(STATEMENTS[True].finditer(text, start))
    starts = {start} if start == 0 or text[start - 1] == "\n" else set()
    starts.update(match.end() for match in NEWLINE.finditer(text, start))
    starts.update(match.start() for match in ASCII_WORD.finditer(text, start)
                  if match.group().lower() in STATEMENT_OPENERS)
    return matches_at(STATEMENTS[False], text, sorted(starts))


def answer_is_matches(text: str, start: int) -> list[re.Match]:
    """Every MATH_ANSWER_IS match from `start` on; in ASCII text each one starts at a word "answer"."""
    if foreign_hint(text):
        return list(MATH_ANSWER_IS[True].finditer(text, start))
    lower = text.lower()
    positions = []
    position = lower.find("answer", start)
    while position >= 0:
        positions.append(position)
        position = lower.find("answer", position + 1)
    return matches_at(MATH_ANSWER_IS[False], text, positions)


def stated_text_agrees(choice: Choice, text: str, end: int, normalized: list[str], letters: str) -> Choice:
    """The choice, or an undecidable one when the option text stated right after its letter is another option's
    ("The answer is (B) 6.2 eV" where 6.2 eV is option D): the letter and its text are two readings that disagree."""
    if not choice.letter or not normalized:
        return choice
    stated = OPTION_TEXT_AFTER.match(text, end)
    other = option_letter(stated.group(1), normalized, letters) if stated else None
    if other and other != choice.letter:
        return Choice(None, True, f"letter {choice.letter} stated with the text of option {other}")
    return choice


def cut_last_line(lines: list[str]) -> bool:
    """Whether a last line holding only a letter was cut off: the next label of a list ("F. True ...\\nG", "(E) means
    ...\\n(F)") or the first letter of the word the two lines before it open with ("Hence ...\\nHence ...\\nH")."""
    last = lines and ONLY_LETTER_LINE.match(TEXT_WRAPPER.sub(r"\1", lines[-1]))
    letter = last and (last.group(1) or last.group(2))
    item = len(lines) > 1 and LETTER_AND_TEXT_LINE.match(lines[-2])
    openings = {line.split(None, 1)[0] for line in lines[-3:-1]} if len(lines) > 2 else set()
    return bool(letter) and (bool(item) and ord(letter) == ord(item.group(1)) + 1
                             or len(openings) == 1 and len(next(iter(openings))) > 1 and openings.pop()[0] == letter)


def choice_candidates(text: str, letters: str, options: list | None,
                      start: int = 0) -> list[tuple[int, Choice, int]]:
    """Every explicit answer statement in text from `start` on as (position, choice, where its answer ends)."""
    found: list[tuple[int, Choice, int]] = []
    normalized = [normalize_option(option) for option in options or []]
    for match in statement_matches(text, start):
        words = statement_text(text, match.end()) if normalized else ""
        letter = named_option(words, normalized, letters) if not BARE_LETTER.fullmatch(words) else None
        choice = Choice(letter) if letter else letter_after(text, match.end(), letters)  # "I and II" is a text
        if not choice and normalized and not words.lstrip().startswith("=") \
                and (letter := option_by_value(words, normalized, letters)):  # ("not F) = 1 - P(F)" states nothing)
            choice = Choice(letter)  # "The answer is approximately 385 meters." (option "385.0")
        labelled = NAMED_WITH_LETTER.fullmatch(words.strip().rstrip(".!")) if normalized and not letter else None
        if labelled and option_letter(labelled.group(1), normalized, letters) not in (None, labelled.group(2)):
            choice = Choice(None, True, f"letter {labelled.group(2)} stated with the text of another option")
        if choice and committed(text, match.start()):
            by_text = letter or labelled and not choice.letter  # the statement's words end it, not a letter
            end = match.end() + len(words) if by_text else letter_end(text, match.end(), choice.letter)
            found.append((match.start(), stated_text_agrees(choice, text, end, normalized, letters), end))
    for match in LETTER_FIRST.finditer(text, start):
        letter = match.group(1) or match.group(2) or match.group(3)
        if match.group(2) and not LETTER_FIRST_BEFORE.search(text, max(0, match.start() - 40), match.start()):
            continue  # "Statement I is correct", "vitamin C is the right one"
        if letter in letters and committed(text, match.start()) and not QUALIFIED.match(text, match.end()) \
                and not UNCOMMITTED_AFTER.match(text, match.end()):
            found.append((match.start(), Choice(letter), match.end()))
    for match in EITHER.finditer(text, start):
        if match.group(1) != match.group(2) and {match.group(1), match.group(2)} <= set(letters) \
                and (EITHER_BEFORE.search(text, max(0, match.start() - 80), match.start()) or match.group(0)[
                    0] in "Ee" and EITHER_OPENING.search(text, max(0, match.start() - 40), match.start())
                    and EITHER_AFTER.match(text, match.end())):
            found.append((match.start(), Choice(None, True, f"{HEDGE_NOTE}: {match.group(1)} or {match.group(2)}"),
                          match.end()))
    for position, box_end, content in boxed_contents(text):
        if position < start:
            continue
        inner = TEXT_WRAPPER.sub(r"\1", content)
        choice = letter_after(inner, 0, letters)
        if choice and BOXED_LETTER.fullmatch(inner):
            found.append((position, choice, box_end))
        elif letter := option_letter(inner, normalized, letters):
            found.append((position, Choice(letter), box_end))
    lines = [line for line in text.splitlines() if line.strip()]
    tail_start = max(start, len(text) - FINAL_LETTER_CHARS)
    final = FINAL_LETTER.search(text, tail_start) if not cut_last_line(lines) else None
    key = final and ("letter" if final.group("letter") else "bare")
    if key and final.group(key) in letters and not FINAL_LETTER_AGAINST.search(final.group("sentence")) \
            and not FINAL_LETTER_CONDITION.search(final.group("sentence")) \
            and not any(end >= final.end(key) for _, _, end in found):  # not the letter of a statement read above
        found.append((final.start(key) - 1, Choice(final.group(key)), final.end(key) + (key == "letter")))
    if lines:
        last = ONLY_LETTER_LINE.match(TEXT_WRAPPER.sub(r"\1", lines[-1]))
        if last and (last.group(1) or last.group(2)) in letters and not cut_last_line(lines):
            found.append((len(text), Choice(last.group(1) or last.group(2)), len(text)))
        elif len(lines) == 1 and ONLY_LETTER_LINE.match(lines[0].upper()) and len(lines[0].strip()) <= 4:
            bare = ONLY_LETTER_LINE.match(lines[0].upper()).group(1) or ONLY_LETTER_LINE.match(
                lines[0].upper()).group(2)  # a reply that is only "b" or "(c)"
            found.append((len(text), Choice(bare) if bare in letters
                          else Choice(None, True, f"{OUT_OF_RANGE_NOTE}: {bare}"),
                          len(text)))
        labelled = LETTER_AND_TEXT_LINE.match(lines[-1])
        listed = len(lines) > 1 and LETTER_AND_TEXT_LINE.match(lines[-2])  # the end of a restated option list
        named = option_letter(labelled.group(2), normalized, letters) if labelled and not listed else None
        if named:
            found.append((len(text), stated_text_agrees(Choice(labelled.group(1)), labelled.group(2), 0, normalized,
                                                        letters) if named != labelled.group(1) else Choice(named),
                          len(text)))
        elif labelled and len(lines) == 1 and len(text) <= SHORT_REPLY and labelled.group(1) in letters \
                and not NEGATED.search(labelled.group(2)):
            found.append((len(text), Choice(labelled.group(1)), len(text)))  # a short reply "B) 3.1 eV photon"
    return found
