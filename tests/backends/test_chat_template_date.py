"""Chat templates that insert today's date (Llama 3.1-3.3) render a fixed date, so a rerun on another day resumes."""
import time

import pytest

from generation.backends.local_generation import TEMPLATE_DATE, prompt_text
from generation.judges.prompts import render_prompt

from tiny_models import build_tokenizer

# The two ways Llama 3.x templates get the date: strftime_now (when defined) or a date_string variable.
DATED_TEMPLATES = {
    "strftime_now": "{{ bos_token }}Today Date: {{ strftime_now('%d %b %Y') }}\n{% for m in messages %}"
                    "{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}",
    "date_string": "{%- if not date_string is defined %}{%- set date_string = strftime_now('%d %b %Y') %}{%- endif %}"
                   "Today Date: {{ date_string }}\n{% for m in messages %}{{ m['content'] }}\n{% endfor %}",
}


@pytest.mark.parametrize("template", DATED_TEMPLATES.values(), ids=DATED_TEMPLATES.keys())
def test_dated_templates_render_the_fixed_date(template):
    tokenizer = build_tokenizer(chat_template=template)
    chat = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    today = time.strftime("%d %b %Y")
    for text in (prompt_text(tokenizer, chat[1:], False), render_prompt(tokenizer, chat, True)):
        assert "Today Date: 26 Jul 2024" in text and (today == "26 Jul 2024" or today not in text)
    assert TEMPLATE_DATE == "2024-07-26"
