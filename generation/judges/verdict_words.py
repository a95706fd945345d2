"""The vocabulary of judge verdicts as named pattern families (English, Spanish, French, German, Portuguese, Italian,
Russian, Chinese, Japanese), each with an example of what it matches; generation.judges.verdicts applies the rule."""
from __future__ import annotations

import re


def words(*alternatives: str) -> str:
    """A regex alternation of whole words (letters on neither side), longest first so prefixes never win."""
    return "(?:" + "|".join(sorted(alternatives, key=len, reverse=True)) + ")"


def latin_or_cjk(latin: str, cjk: str) -> str:
    """Whole words for alphabetic scripts, plain substrings for Chinese, Japanese and symbols (no spaces around)."""
    return rf"(?:(?<![^\W\d_])(?:{latin})(?![^\W\d_])|{cjk})"


# "sound" and "right" are verdicts only as predicates ("the proof is sound", "isn't right"), never a noun or
# direction ("the speed of sound", "to the right", "a right angle").
COPULA_ONLY = r"(?:(?<=\bis )|(?<=\bare )|(?<=\bbe )|(?<=\bnot )|(?<=n't ))(?:sound|right)"
# Finding no error is a verdict for True: "no errors", "no mistakes found", "error-free".
NO_ERROR = r"no\s+(?:errors?|mistakes?|flaws?)|error-free"


# A verdict word for True: "True", "correct", "valid", "Verdadero", "richtig", "верно", "正确", "✅".
TRUE = latin_or_cjk(words("true", "correct", "valid", "flawless", "verdadero", "verdadera", "correcto",
                          "correcta", "válido", "válida", "vrai", "vraie", "correcte", "valide", "wahr", "richtig",
                          "korrekt", "gültig", "verdadeiro", "verdadeira", "correto", "correta", "vero", "corretto",
                          "corretta", "valido", "valida", "верно", "верный", "верная", "верное", "правильно",
                          "правильный", "правильная", "правильное", "истина", "истинно")
                    + "|" + COPULA_ONLY + "|" + NO_ERROR,
                    words("正确", "正しい", "正解",
                          "✅", "✔", "☑", "✓"))
# A verdict word for False: "False", "incorrect", "wrong", "invalid", "Falso", "faux", "falsch", "неверно",
# "错误", "❌".
FALSE = latin_or_cjk(words("false", "incorrect", "wrong", "invalid", "flawed", "erroneous", "unsound",
                           "falso", "falsa", "incorrecto", "incorrecta", "inválido", "inválida", "faux", "fausse",
                           "incorrecte", "invalide", "falsch", "inkorrekt", "ungültig", "incorreto", "incorreta",
                           "sbagliato", "errato", "errata", "invalido", "invalida", "неверно", "неверный", "неверная",
                           "неверное", "неправильно", "неправильный", "неправильная", "неправильное", "ложь",
                           "ложно"),
                     words("错误", "不正确", "不对", "誤り", "間違い", "間違っている", "正しくない", "不正解",
                           "❌", "✘", "✗", "✖", "❎"))
# A negation right before a verdict word, one adverb allowed between: "not", "isn't entirely", "no es", "nicht", "не".
NEGATION = (r"(?:(?<![^\W\d_])(?:not|never|no|nicht|nie|pas|non|não|не)|n't)\s+"
            r"(?:[^\W\d_]+ly\s+|[^\W\d_]+\s+(?=(?:correct|true|right)\b))?")
VERDICT = re.compile(rf"(?P<neg>{NEGATION})?(?:(?P<false>{FALSE})|(?P<true>{TRUE}))", re.IGNORECASE)
# Words after which a verdict word still predicates ("False because ...", "correct and complete"); any other word
# makes it attributive ("the correct answer", "a false assumption", "False Positive"): no verdict.
PREDICATIVE_FOLLOWERS = frozenset(
    "and or but because since as so though although overall here there in on at for with by to of after given due "
    "except if when unless only then now too also indeed throughout either anyway all based from under while whereas "
    "yet until once within regardless nonetheless however therefore thus hence according is it this that y e et und "
    "found detected "
    "и o ou oder pero mais aber но porque car weil потому ведь ya".split())
# Labels that name the verdict ("Final verdict:", "The answer is", "Veredicto:", "Urteil:", "结论："); a label is at
# most LABEL_WORDS words, no digit ("Step 3: False" is about a step), one of them from this list.
LABELS = frozenset(
    "verdict verdicts answer judgment judgement conclusion decision evaluation assessment result outcome rating grade "
    "label correctness classification status determination ruling final overall summary score output match "
    "equivalent equivalence veredicto respuesta "
    "conclusión evaluación juicio decisión resultado réponse jugement évaluation décision résultat urteil antwort "
    "fazit ergebnis bewertung entscheidung schlussfolgerung вердикт ответ вывод оценка заключение итог resposta "
    "veredito conclusão avaliação decisão verdetto risposta conclusione valutazione giudizio".split())
# Labels that name the verdict itself (not an answer or result): a verdict after them in another format, such as
# "My final verdict is: [[A>B]]", is no True/False verdict.
VERDICT_LABEL = re.compile(r"\b(?:verdict|judge?ment|decision|veredicto|urteil|вердикт)\b|判断|判定|裁决",
                           re.IGNORECASE)
CJK_LABEL = re.compile("结论|判断|答案|裁决|评判|判定|评估|结果|結論|評価|答え|判決")
LABEL_WORDS = 5
# What joins a label to its verdict: "Verdict: False", "answer = True", "Verdict -> False", "the answer is True".
LABEL_LINK = re.compile(r"\s*(?:[:：=]|->|=>|→|⇒|\s[-–—]\s)\s*|\s+(?:is|was|remains|stands|es|est|ist|é|è|是)\s+",
                        re.IGNORECASE)
# A clause that concludes: "Therefore, ...", "In conclusion ...", ", so it is False", "I would say False", "Donc",
# "Por lo tanto", "Also ...", "Итак", "因此", "したがって".
CONCLUSION = re.compile(
    r"^\W*(?:" + words(
        "therefore", "thus", "hence", "so", "consequently", "accordingly", "in conclusion", "to conclude",
        "bottom line", "tl;dr", "tldr", "short answer", "long story short",
        "in summary", "to summarize", "entonces", "alors", "to summarise", "to sum up", "summing up", "in short",
        "in sum", "overall",
        "all in all", "all things considered", "ultimately", "finally", "in the end", "as a result", "in total",
        "i conclude", "i would say", "i'd say", "i judge", "i rate", "i will go with", "i'll go with", "i must say",
        "my final", "por lo tanto", "por tanto", "así que", "en conclusión", "en resumen", "en definitiva",
        "finalmente", "donc", "ainsi", "par conséquent", "en conclusion", "en résumé", "finalement", "au final",
        "also", "daher", "deshalb", "somit", "folglich", "insgesamt", "zusammenfassend", "abschließend",
        "schließlich", "letztlich", "portanto", "logo", "assim", "em conclusão", "em resumo", "quindi",
        "pertanto", "dunque", "in conclusione", "in sintesi", "итак", "следовательно", "поэтому", "таким образом",
        "в итоге", "в заключение", "значит") + r"(?![^\W\d_])|因此|所以|综上所述|综上|总之|总的来说|最终|"
    r"したがって|従って|よって|以上より|結論として|つまり)",
    re.IGNORECASE)
# A revision of what came before, at the start of a clause: "Wait,", "Actually,", "On reflection", "Hmm", "Espera",
# "En fait", "Moment mal", "На самом деле", "等等", "待って".
REVISION_START = re.compile(
    r"^\W*(?:" + words(
        "wait", "actually", "hmm", "hmmm", "hold on", "no wait", "on second thought", "on further thought",
        "on reflection", "on further reflection", "upon reflection", "upon further review", "upon closer inspection",
        "on closer inspection", "correction", "scratch that", "looking again", "re-reading", "rereading",
        "re-checking", "rechecking", "after all", "espera", "en realidad", "de hecho", "attends", "attendez",
        "en fait", "warte", "moment mal", "eigentlich", "подожди", "погоди", "на самом деле") +
    r"(?![^\W\d_])|等等|等一下|其实|实际上|待って|いや|実は)", re.IGNORECASE)
# A revision anywhere: "I was wrong", "I made a mistake", "let me reconsider", "I take it back", "I misread".
REVISION_ANYWHERE = re.compile(
    r"\b(?:I\s+(?:was|am)\s+wrong|I\s+(?:have\s+)?made\s+an?\s+(?:\w+\s+)?(?:mistake|error)|I\s+(?:need\s+to|must|should)"
    r"\s+(?:re-?consider|re-?check|double-check|revisit|correct\s+(?:myself|that|this))|let\s+me\s+(?:re-?consider|"
    r"re-?check|double-check|re-?evaluate|re-?examine|verify\s+again)|I\s+take\s+(?:that|it)\s+back|I\s+retract|"
    r"I\s+(?:mis-?read|misjudged|overlooked)|I\s+stand\s+corrected|my\s+(?:previous|earlier|initial|first)\s+"
    r"(?:verdict|answer|assessment|judge?ment|conclusion)\s+was)\b", re.IGNORECASE)
# A statement that no verdict can be given, by the judge or on the question's yes/no: "I cannot determine whether ...",
# "it is impossible to tell if", "I'm not sure", "neither true nor false", "the verdict is inconclusive",
# "no puedo determinar", "je ne peux pas conclure", "kann nicht entscheiden", "не могу определить", "无法判断"
# ("x cannot be determined from the data" is about the problem, not the verdict).
UNDECIDED = re.compile(
    r"\bI\s+(?:cannot|can't|could\s*not|couldn't|am\s+(?:not\s+able|unable)\s+to)\s+(?:\w+\s+){0,2}?(?:determine|decide|"
    r"tell|judge|verify|confirm|say|conclude|assess|evaluate|be\s+(?:sure|certain))"
    r"|\b(?:can(?:not|'t)|could(?:n't|\s+not)|unable\s+to|impossible\s+to|not\s+possible\s+to|no\s+way\s+to)\s+"
    r"(?:be\s+)?(?:determined?|decided?|told|tell|judged?|verified|verify|said|say|concluded?)\s+(?:whether|if)\b"
    r"|\b(?:insufficient|not\s+enough)\s+(?:\w+\s+)?(?:information|context|detail|data|evidence)\s+to\s+(?:\w+\s+)?"
    r"(?:whether|if|the\s+(?:solution|answer|response|proof))\b"
    r"|\b(?:I(?:'m|\s+am)|we\s+are)\s+(?:\w+\s+)?(?:not\s+(?:sure|certain)|unsure|uncertain|(?:not\s+able|unable)\s+to\s+"
    r"(?:determine|decide|tell|judge|say|conclude))|\b(?:hard|difficult)\s+to\s+(?:say|tell|decide)\b"
    r"|\b(?:no|not\s+(?:give|commit\s+to|provide|reach)\s+a)\s+(?:final\s+)?verdict\b|\babstain"
    r"|\bneither\s+(?:\w+\s+){0,2}?(?:applies|apply|fits|holds)\b"
    r"|\b(?:unclear|uncertain|undetermined|impossible\s+to\s+tell)\s+(?:whether|if)\b"
    r"|\b(?:verdict|judge?ment|decision|evaluation|assessment|result|conclusion)\s*(?:[:：=]|\s(?:is|remains))\s*"
    r"(?:\w+\s+)?(?:inconclusive|undetermined|indeterminate|undecidable|uncertain|unclear|unknown|insufficient)"
    rf"|\bneither\s+(?:{TRUE}|{FALSE})\s+nor\b|\bni\s+\w+\s+ni\b|\bweder\s+\w+\s+noch\b|\bни\s+\w+,?\s+ни\b"
    r"|\bno\s+(?:puedo|es\s+posible)\s+(?:determinar|decidir|saber)|\bne\s+peux\s+pas\s+(?:déterminer|décider|conclure)"
    r"|\bkann\s+(?:\w+\s+)?nicht\s+(?:entscheiden|bestimmen|beurteilen|sagen)|\bне\s+могу\s+(?:определить|решить|сказать)"
    r"|无法(?:确定|判断|判定)|不能(?:确定|判断)|不确定|判断できない|判定できない|決められない", re.IGNORECASE)
# A qualifier that makes a verdict word no verdict of its own: "partially correct", "mostly true", "largely wrong".
QUALIFIED = re.compile(r"(?<![^\W\d_])(?:partially|partly|mostly|largely|half|somewhat|almost|nearly|essentially|"
                       r"mainly|parcialmente|partiellement|teilweise|частично)\s+$", re.IGNORECASE)
# A qualifier after a verdict word, in its clause: "correct except for", "correct in spirit", "correct up to a
# sign", "correct in steps 1-3" (not "correct in every step").
QUALIFIED_AFTER = re.compile(
    r"^(?:.*?(?<![^\W\d_])(?:except|apart\s+from|other\s+than|save\s+for|but\s+for)|[ \t]*(?:up\s+to|only\s+"
    r"(?:partly|partially)|in\s+(?:spirit|principle|essence|part|places|most\s+\w+)|for\s+the\s+most\s+part|(?:in|for)\s+"
    r"(?:steps?|parts?|paragraphs?|cases?|lines?)\s*(?:\d|\(?[a-z]\))))(?![^\W\d_])", re.IGNORECASE)
# A label that introduces the reply's own verdict: a reading after it starts a new run ("Verdict:", "Final
# Judgement:", "Fazit", "结论").
VERDICT_HEADING = re.compile(r"(?<![^\W\d_])(?:verdict|judge?ment|decision|conclusion|veredicto|urteil|fazit|вердикт|"
                             r"итог)(?![^\W\d_])|结论|結論", re.IGNORECASE)
# A clause that opens with a concession: its verdict words are conceded, not concluded ("Although the answer is
# correct, ...", "While the final answer is correct, ...", "Aunque", "Bien que", "Obwohl", "Хотя", "虽然").
CONCESSION = re.compile(r"^\W*(?:(?:although|though|even\s+though|even\s+if|while|whilst|whereas|despite|granted|"
                        r"aunque|bien\s+que|obwohl|хотя)(?![^\W\d_])|虽然|尽管)", re.IGNORECASE)
# A negation raised to the judge's belief, which negates the verdict after it: "I don't think the solution is correct".
NEG_RAISING = re.compile(r"(?<![^\W\d_])I\s+(?:don't|do\s+not)\s+(?:think|believe)(?![^\W\d_])", re.IGNORECASE)
# Reported speech: what the solution, its author or anyone but the judge says ("the student claims the answer is
# correct", "It says the answer is correct", "According to the solution, ..."); its verdict words are mentions.
REPORTED = re.compile(r"\W*according\s+to(?![^\W\d_])|(?<![^\W\d_])(?<!\bI\s)(?<!\bwe\s)(?:says|said|claims?|claimed|"
                      r"writes|wrote|states|stated|asserts|asserted|concludes|concluded|argues|argued|believes|insists|"
                      r"maintains|suggests|thinks|dice|afirma|affirme|behauptet|утверждает)(?![^\W\d_])", re.IGNORECASE)
# A clause that opens with a contrast and is otherwise only a verdict: "..., but the reasoning is incorrect".
CONTRAST_START = re.compile(r"^\W*(?:but|however|yet|pero|mais|aber|но)(?![^\W\d_])", re.IGNORECASE)
# What joins two verdict words offered as options: "True or False", "(True/False)", "correct or wrong", "verdadero o
# falso", "正确或错误": an enumeration of the prompt's choices, never a verdict.
OPTION_SEPARATOR = re.compile(r"[/|]|(?<=[ \t])(?:or|o|ou|oder|или)(?=[ \t])|或|还是", re.IGNORECASE)
# A condition or hypothesis that makes a verdict word a mention: "if n were even it would be True", "True only for
# n = 2", "for example", "si", "wenn", "если", "如果".
CONDITION = re.compile(
    r"(?<![^\W\d_])(?:if|unless|assuming|assume|suppose|supposing|whether|provided\s+that|otherwise|when|only\s+for|"
    r"would\s+(?:have\s+)?be(?:en)?|could\s+(?:have\s+)?be(?:en)?|might\s+be|may\s+be|for\s+example|for\s+instance|"
    r"e\.g|such\s+as|si|sinon|wenn|falls|ob|если|或者)(?![^\W\d_])|如果|假如|もし", re.IGNORECASE)
# A part of the solution, or one of several items: a verdict on it is not a verdict on the solution ("step 3 is
# wrong", "paragraph 2 is correct", "the calculation is correct", "Assistant A's answer is correct", "Response 2").
PART = re.compile(
    r"(?<![^\W\d_])(?:(?:assistant|response|option|candidate|choice|model|output|solution)\s+(?:[A-Z]|\d+)(?!\w)|"
    r"sub-?steps?|steps?|paragraphs?|lines?|parts?|equations?|stages?|cases?|lemmas?|calculations?|"
    r"(?:reference|expected|gold|official)\s+(?:answer|solution)|ground[\s-]truth|"
    r"computations?|assumptions?|premises?|terms?|formulas?|expressions?|arithmetic|algebra|approach|"
    r"method|paso|étape|schritt|шаг|absatz|paragraphe)(?![^\W\d_])|步骤|段落|ステップ", re.IGNORECASE)
# The first line of a note, whose verdict words are mentions: "Note:", "NB:", "P.S.", "Remark:", "Hinweis:", "注：".
NOTE = re.compile(r"^\W*(?:note|nb|n\.b|p\.?s|remark|caveat|disclaimer|aside|side\s+note|nota|hinweis|anmerkung|"
                  r"remarque|примечание|замечание|注|备注|注意|補足)\b\W", re.IGNORECASE)
# Clause boundaries: a comma, semicolon or dash, or a contrast ("but", "however", "pero", "aber", "但是").
CLAUSE_BREAK = re.compile(r"(?:[,，；]|;(?![^\W\d_]))\s*|\s[—–]\s|"
                          r"\s(?=(?:but|however|although|though|whereas|yet|pero|aunque|mais|aber|но)\b)|(?=但是|然而)",
                          re.IGNORECASE)
# A verdict that opens a line, its reason after a dash or colon: "False — the proof fails", "True: every step holds".
LEAD_VERDICT = re.compile(rf"[^\w(]*(?P<neg>{NEGATION})?(?:(?P<false>{FALSE})|(?P<true>{TRUE}))"
                          r"[ \t*]*(?:[—–:：]|\s-\s)", re.IGNORECASE)
# Words that may stand around a verdict in a sentence that is only a verdict ("So, my final answer is: False.",
# "I would say the solution is correct.", "Es falso.").
FILLER = frozenset(
    "i it its it's s this that is was my the a an final overall answer verdict so thus therefore hence say would "
    "think believe judge conclude rate go with solution response proof reasoning argument result whole entire then "
    "clearly definitely simply and must be as therefore here d ll will decision judgment judgement conclusion "
    "evaluation assessment in summary short label grade rating outcome la el es le est die ist der das lösung "
    "antwort réponse solución respuesta resposta soluzione risposta c ce это решение ответ m am confident sure "
    "certain given provided by student of there found detected completely fully entirely totally absolutely "
    "perfectly certainly indeed".split())
# The words of a sentence that only remarks on what precedes it on its line: "... = 2. This is correct."
PRONOUN_REMARK = frozenset("this that it its s is was all also too here so".split())
# A yes or a no (English, Spanish, French, German, Portuguese, Italian, Russian, Chinese, Japanese) that answers
# a question: "Yes", "No", "Sí", "Oui", "Nein", "Não", "Да", "是", "否", "はい", "いいえ"; a word after it other than
# punctuation ("No doubt", "Yes and no") makes it no answer.
YES_NO = re.compile(r"(?<![^\W\d_])(?:(?P<yes>yes|yep|yeah|sí|si|oui|ja|sim|sì|да)|(?P<no>no|nope|non|nein|não|нет))"
                    r"(?![^\W\d_])(?=[ \t]*(?:[.,!;:—–]|-\s|$))|"
                    r"(?:(?P<cjkyes>是的|是|对|はい)|(?P<cjkno>否|不是|不对|いいえ))"
                    r"(?=[ \t]*(?:[。，！.,!]|$))", re.IGNORECASE | re.MULTILINE)
# A label before the answer to a question: "A:", "Answer:", "My answer:", "Respuesta:", "I'd say".
ANSWER_LABEL = re.compile(r"(?:(?<![^\W\d_])(?:my\s+)?(?:a|answer|respuesta|réponse|antwort|resposta|risposta|ответ)"
                          r"\s*[:：]\s*|答[:：]\s*|(?<![^\W\d_])I(?:'d|\s+would)\s+say\s*[:,]?\s*)$", re.IGNORECASE)
# Words a question about the solution's correctness holds besides its verdict word and the fillers ("Is the final
# answer correct?", "Does the solution arrive at the right answer?", "Are there any errors in the solution?", "¿Es
# correcta la solución?", "Ist die Lösung richtig?", "Верно ли решение?").
QUESTION_WORDS = frozenset(
    "is are was does do did has have there any arrive at reach get give obtain complete contain contains q question s "
    "correctly properly really actually solve solves solved answered problem está estão è est elle il ist ли é "
    "solução o".split())
# A verdict word of a question that is no verdict word elsewhere: "right", "correctly", "errors", "mistakes", and
# a comparison with the reference ("equivalent to the reference", "match the expected answer").
QUESTION_VERDICT = re.compile(
    r"(?<![^\W\d_])(?:(?P<true>right|correctly|properly|(?:equivalent|identical|equal|the\s+same\s+as|match(?:es)?|"
    r"consistent|agree(?:s)?)(?:\s+(?:to|with|as))?\s+the\s+(?:reference|expected|gold|ground[\s-]truth|correct|official)"
    r"(?:\s+(?:answer|solution|value|result))?)|(?P<false>errors?|mistakes?|flaws?|wrongly|incorrectly))(?![^\W\d_])",
    re.IGNORECASE)
# The solution named in a question ("the solution", "the final answer", "it"), and a question's CJK fillers.
SOLUTION_NOUN = re.compile(r"(?<![^\W\d_])(?:solution|answer|response|proof|reasoning|argument|result|derivation|work|"
                           r"solución|respuesta|réponse|lösung|antwort|solução|resposta|soluzione|risposta|решение|"
                           r"ответ)(?![^\W\d_])|解答|答案|回答|答え", re.IGNORECASE)
CJK_QUESTION_FILLER = re.compile("该|这个|这|最终|的|是否|吗|呢|この|は|ですか|でしょうか|か|解答|答案|回答|答え")
# A label under which a status word or a score is the verdict: "Status: PASS", "Grade: 0/1", "Score: 0".
STATUS_LABEL = re.compile(r"(?<![^\W\d_])(?:verdict|judge?ment|decision|conclusion|evaluation|assessment|status|grade|"
                          r"score|rating|correctness|label|classification|result|match|equivalent|equivalence)"
                          r"(?![^\W\d_])", re.IGNORECASE)
# A status word as a label's whole value: "PASS", "failed", "Yes", "No".
STATUS_WORD = re.compile(r"^(?:(?P<true>pass|passed|yes)|(?P<false>fail|failed|no))$", re.IGNORECASE)
# A score as a label's whole value: "0/1", "1/1", "0", "100%", "0.0": no credit is False, full credit True.
SCORE = re.compile(r"^(?P<points>\d+(?:\.\d+)?)\s*(?:(?:/|out\s+of)\s*(?P<scale>\d+(?:\.\d+)?)|(?P<percent>%))?$",
                   re.IGNORECASE)
SCORE_LABEL = re.compile(r"(?<![^\W\d_])(?:grade|score|correctness|points)(?![^\W\d_])", re.IGNORECASE)
# A score label of a yes/no quantity, whose scale is 1 when it gives none: "Correctness: 1".
BINARY_LABEL = re.compile(r"(?<![^\W\d_])correctness(?![^\W\d_])", re.IGNORECASE)
