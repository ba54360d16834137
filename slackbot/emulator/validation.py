"""Block Kit limit checks, answering the way Slack does.

Slack checks blocks on its side only: slack_sdk validates limits only when blocks are built with its
model classes, and our presenters send plain dicts. Without these checks a card that Slack would
refuse (51 blocks, a 3001-character section after a long log excerpt) passes every local test and
fails in production. So the emulator applies the documented limits (reference section 5) and
explains a refusal like Slack's ``response_metadata.messages``::

    [ERROR] must be less than 51 items [json-pointer:/blocks]

The checks cover the block and element types the bot uses plus the common rest; an unknown block
or element type is refused, as Slack refuses it, so a typo cannot slip through.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeGuard

MESSAGE_MAX_BLOCKS = 50
SURFACE_MAX_BLOCKS = 100  # modals and the Home tab
TEXT_MAX = 3000
SECTION_TEXT_MAX = 3000
SECTION_FIELDS_MAX = 10
SECTION_FIELD_TEXT_MAX = 2000
HEADER_TEXT_MAX = 150
MARKDOWN_BLOCK_MAX = 12000
ACTIONS_MAX_ELEMENTS = 25
CONTEXT_MAX_ELEMENTS = 10
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
URL_MAX = 3000
ID_MAX = 255  # action_id, block_id, callback_id, external_id
OPTION_TEXT_MAX = 75
OPTION_VALUE_MAX = 150
OPTIONS_MAX = 100
OVERFLOW_OPTIONS_MAX = 5
CHOICE_OPTIONS_MAX = 10  # checkboxes, radio_buttons
PLACEHOLDER_MAX = 150
VIEW_TITLE_MAX = 24
PRIVATE_METADATA_MAX = 3000
INPUT_LABEL_MAX = 2000
IMAGE_ALT_MAX = 2000
CONFIRM_LIMITS = {"title": 100, "text": 300, "confirm": 30, "deny": 30}

BLOCK_TYPES = frozenset(
    {"actions", "context", "divider", "file", "header", "image", "input", "markdown", "rich_text", "section"}
    | {"video", "table"}
)
SELECTS_WITH_OPTIONS = frozenset({"static_select", "multi_static_select"})
SELECTS_WITHOUT_OPTIONS = frozenset(
    {
        "users_select",
        "multi_users_select",
        "conversations_select",
        "multi_conversations_select",
        "channels_select",
        "multi_channels_select",
        "external_select",
        "multi_external_select",
    }
)
SIMPLE_INPUT_ELEMENTS = frozenset(
    {
        "plain_text_input",
        "email_text_input",
        "url_text_input",
        "number_input",
        "rich_text_input",
        "datepicker",
        "timepicker",
        "datetimepicker",
        "file_input",
    }
)
ELEMENT_TYPES = (
    frozenset({"button", "overflow", "checkboxes", "radio_buttons", "image", "workflow_button"})
    | SELECTS_WITH_OPTIONS
    | SELECTS_WITHOUT_OPTIONS
    | SIMPLE_INPUT_ELEMENTS
)


def _error(reason: str, pointer: str) -> str:
    return f"[ERROR] {reason} [json-pointer:{pointer}]"


def _too_long(limit: int, pointer: str) -> str:
    return _error(f"must be less than {limit + 1} characters", pointer)


def _too_many(limit: int, pointer: str) -> str:
    return _error(f"must be less than {limit + 1} items", pointer)


def _missing(field: str, pointer: str) -> str:
    return _error(f"missing required field: {field}", pointer)


def check_text_object(obj: Any, pointer: str, *, max_length: int = TEXT_MAX, plain_only: bool = False) -> Iterator[str]:
    """A ``plain_text``/``mrkdwn`` composition object: 1 to ``max_length`` characters."""
    if not isinstance(obj, dict):
        yield _error("must be an object", pointer)
        return
    kind = obj.get("type")
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if kind not in allowed:
        yield _error(f"must be one of {', '.join(allowed)}", f"{pointer}/type")
    text = obj.get("text")
    if not isinstance(text, str):
        yield _missing("text", pointer)
    elif len(text) < 1:
        yield _error("must be more than 0 characters", f"{pointer}/text")
    elif len(text) > max_length:
        yield _too_long(max_length, f"{pointer}/text")


def _check_id(obj: dict[str, Any], field: str, pointer: str) -> Iterator[str]:
    value = obj.get(field)
    if value is None:
        return
    if not isinstance(value, str):
        yield _error("must be a string", f"{pointer}/{field}")
    elif len(value) > ID_MAX:
        yield _too_long(ID_MAX, f"{pointer}/{field}")


def _check_str(obj: dict[str, Any], field: str, limit: int, pointer: str) -> Iterator[str]:
    value = obj.get(field)
    if value is None:
        return
    if not isinstance(value, str):
        yield _error("must be a string", f"{pointer}/{field}")
    elif len(value) > limit:
        yield _too_long(limit, f"{pointer}/{field}")


def _check_confirm(confirm: Any, pointer: str) -> Iterator[str]:
    if confirm is None:
        return
    if not isinstance(confirm, dict):
        yield _error("must be an object", pointer)
        return
    for field, limit in CONFIRM_LIMITS.items():
        if field not in confirm:
            yield _missing(field, pointer)
            continue
        yield from check_text_object(confirm[field], f"{pointer}/{field}", max_length=limit, plain_only=field != "text")


def _check_option(option: Any, pointer: str) -> Iterator[str]:
    if not isinstance(option, dict):
        yield _error("must be an object", pointer)
        return
    if "text" not in option:
        yield _missing("text", pointer)
    else:
        yield from check_text_object(option["text"], f"{pointer}/text", max_length=OPTION_TEXT_MAX)
    value = option.get("value")
    if value is None:
        yield _missing("value", pointer)
    else:
        yield from _check_str(option, "value", OPTION_VALUE_MAX, pointer)


def _check_options(options: Any, pointer: str, *, limit: int, required: bool = True) -> Iterator[str]:
    if options is None:
        if required:
            yield _missing(pointer.rsplit("/", 1)[-1], pointer.rsplit("/", 1)[0])
        return
    if not isinstance(options, list):
        yield _error("must be an array", pointer)
        return
    if not options:
        yield _error("must be more than 0 items", pointer)
    if len(options) > limit:
        yield _too_many(limit, pointer)
    for index, option in enumerate(options):
        yield from _check_option(option, f"{pointer}/{index}")


def check_element(element: Any, pointer: str) -> Iterator[str]:
    """An interactive (or image) element inside ``actions``, ``section.accessory`` or ``input``."""
    if not isinstance(element, dict):
        yield _error("must be an object", pointer)
        return
    kind = element.get("type")
    if kind not in ELEMENT_TYPES:
        yield _error("failed to match all allowed schemas", pointer)
        return
    yield from _check_id(element, "action_id", pointer)
    yield from _check_confirm(element.get("confirm"), f"{pointer}/confirm")
    if "placeholder" in element:
        yield from check_text_object(element["placeholder"], f"{pointer}/placeholder", max_length=PLACEHOLDER_MAX)
    if kind == "button":
        if "text" not in element:
            yield _missing("text", pointer)
        else:
            yield from check_text_object(
                element["text"], f"{pointer}/text", max_length=BUTTON_TEXT_MAX, plain_only=True
            )
        yield from _check_str(element, "value", BUTTON_VALUE_MAX, pointer)
        yield from _check_str(element, "url", URL_MAX, pointer)
        style = element.get("style")
        if style is not None and style not in ("primary", "danger"):
            yield _error("must be one of primary, danger", f"{pointer}/style")
    elif kind in SELECTS_WITH_OPTIONS:
        if "option_groups" in element:
            groups = element["option_groups"]
            if not isinstance(groups, list) or len(groups) > OPTIONS_MAX:
                yield _too_many(OPTIONS_MAX, f"{pointer}/option_groups")
            else:
                for index, group in enumerate(groups):
                    group_ptr = f"{pointer}/option_groups/{index}"
                    options = group.get("options") if isinstance(group, dict) else None
                    yield from _check_options(options, f"{group_ptr}/options", limit=OPTIONS_MAX)
        else:
            yield from _check_options(element.get("options"), f"{pointer}/options", limit=OPTIONS_MAX)
    elif kind == "overflow":
        yield from _check_options(element.get("options"), f"{pointer}/options", limit=OVERFLOW_OPTIONS_MAX)
    elif kind in ("checkboxes", "radio_buttons"):
        yield from _check_options(element.get("options"), f"{pointer}/options", limit=CHOICE_OPTIONS_MAX)
    elif kind == "image":
        yield from _check_image_fields(element, pointer)


def _check_image_fields(obj: dict[str, Any], pointer: str) -> Iterator[str]:
    if "image_url" not in obj and "slack_file" not in obj:
        yield _missing("image_url", pointer)
    yield from _check_str(obj, "image_url", URL_MAX, pointer)
    if "alt_text" not in obj:
        yield _missing("alt_text", pointer)
    else:
        yield from _check_str(obj, "alt_text", IMAGE_ALT_MAX, pointer)


def _indexed(elements: Any) -> Iterator[tuple[int, Any]]:
    """The items of an ``elements`` list with their index (nothing when it is not a list)."""
    if isinstance(elements, list):
        yield from enumerate(elements)


def _check_section(block: dict[str, Any], pointer: str) -> Iterator[str]:
    if "text" not in block and "fields" not in block:
        yield _missing("text", pointer)
    if "text" in block:
        yield from check_text_object(block["text"], f"{pointer}/text", max_length=SECTION_TEXT_MAX)
    if "fields" in block:
        fields = block["fields"]
        if not isinstance(fields, list):
            yield _error("must be an array", f"{pointer}/fields")
        else:
            if len(fields) > SECTION_FIELDS_MAX:
                yield _too_many(SECTION_FIELDS_MAX, f"{pointer}/fields")
            for index, field in enumerate(fields):
                yield from check_text_object(field, f"{pointer}/fields/{index}", max_length=SECTION_FIELD_TEXT_MAX)
    if "accessory" in block:
        yield from check_element(block["accessory"], f"{pointer}/accessory")


def _check_header(block: dict[str, Any], pointer: str) -> Iterator[str]:
    if "text" not in block:
        yield _missing("text", pointer)
        return
    yield from check_text_object(block["text"], f"{pointer}/text", max_length=HEADER_TEXT_MAX, plain_only=True)


def _check_list(block: dict[str, Any], pointer: str, limit: int) -> Iterator[str]:
    elements = block.get("elements")
    if not isinstance(elements, list):
        yield _missing("elements", pointer)
        return
    if not elements:
        yield _error("must be more than 0 items", f"{pointer}/elements")
    if len(elements) > limit:
        yield _too_many(limit, f"{pointer}/elements")


def _check_actions(block: dict[str, Any], pointer: str) -> Iterator[str]:
    yield from _check_list(block, pointer, ACTIONS_MAX_ELEMENTS)
    seen: set[str] = set()
    for index, element in _indexed(block.get("elements")):
        element_ptr = f"{pointer}/elements/{index}"
        yield from check_element(element, element_ptr)
        action_id = element.get("action_id") if isinstance(element, dict) else None
        if isinstance(action_id, str):
            if action_id in seen:
                yield _error(f"duplicate action_id: {action_id}", f"{element_ptr}/action_id")
            seen.add(action_id)


def _check_context(block: dict[str, Any], pointer: str) -> Iterator[str]:
    yield from _check_list(block, pointer, CONTEXT_MAX_ELEMENTS)
    for index, element in _indexed(block.get("elements")):
        element_ptr = f"{pointer}/elements/{index}"
        if isinstance(element, dict) and element.get("type") == "image":
            yield from _check_image_fields(element, element_ptr)
        else:
            yield from check_text_object(element, element_ptr)


def _check_input(block: dict[str, Any], pointer: str) -> Iterator[str]:
    if "label" not in block:
        yield _missing("label", pointer)
    else:
        yield from check_text_object(block["label"], f"{pointer}/label", max_length=INPUT_LABEL_MAX, plain_only=True)
    if "element" not in block:
        yield _missing("element", pointer)
    else:
        yield from check_element(block["element"], f"{pointer}/element")
    if "hint" in block:
        yield from check_text_object(block["hint"], f"{pointer}/hint", max_length=INPUT_LABEL_MAX, plain_only=True)


def _check_block(block: Any, pointer: str) -> Iterator[str]:
    if not isinstance(block, dict):
        yield _error("must be an object", pointer)
        return
    kind = block.get("type")
    if kind not in BLOCK_TYPES:
        yield _error("failed to match all allowed schemas", pointer)
        return
    yield from _check_id(block, "block_id", pointer)
    if kind == "section":
        yield from _check_section(block, pointer)
    elif kind == "header":
        yield from _check_header(block, pointer)
    elif kind == "actions":
        yield from _check_actions(block, pointer)
    elif kind == "context":
        yield from _check_context(block, pointer)
    elif kind == "input":
        yield from _check_input(block, pointer)
    elif kind == "image":
        yield from _check_image_fields(block, pointer)
        if "title" in block:
            yield from check_text_object(block["title"], f"{pointer}/title", max_length=IMAGE_ALT_MAX)
    elif kind == "markdown":
        text = block.get("text")
        if not isinstance(text, str):
            yield _missing("text", pointer)
        elif len(text) > MARKDOWN_BLOCK_MAX:
            yield _too_long(MARKDOWN_BLOCK_MAX, f"{pointer}/text")
    elif kind == "rich_text" and not isinstance(block.get("elements"), list):
        yield _missing("elements", pointer)


def check_blocks(blocks: list[Any], *, pointer: str = "/blocks", max_blocks: int = MESSAGE_MAX_BLOCKS) -> list[str]:
    """Every problem with a list of blocks, as Slack-style ``[ERROR] ... [json-pointer:...]`` lines.

    An empty list means the blocks are acceptable.
    """
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(_too_many(max_blocks, pointer))
    seen: set[str] = set()
    for index, block in enumerate(blocks):
        block_ptr = f"{pointer}/{index}"
        problems.extend(_check_block(block, block_ptr))
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if isinstance(block_id, str):
            if block_id in seen:
                problems.append(_error(f"duplicate block_id: {block_id}", f"{block_ptr}/block_id"))
            seen.add(block_id)
    return problems


def is_block_list(value: Any) -> TypeGuard[list[dict[str, Any]]]:
    """Whether ``value`` has the outer shape of ``blocks``: a list of objects (else ``invalid_blocks_format``)."""
    return isinstance(value, list) and all(isinstance(block, dict) for block in value)


def check_view(view: Any, *, pointer: str = "/view") -> list[str]:
    """Problems with a modal or Home tab view object (``views.open/update/push/publish``)."""
    if not isinstance(view, dict):
        return [_error("must be an object", pointer)]
    problems: list[str] = []
    kind = view.get("type")
    if kind not in ("modal", "home"):
        problems.append(_error("must be one of modal, home", f"{pointer}/type"))
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        problems.append(_missing("blocks", pointer))
        blocks = []
    else:
        problems.extend(check_blocks(blocks, pointer=f"{pointer}/blocks", max_blocks=SURFACE_MAX_BLOCKS))
    if kind == "modal":
        if "title" not in view:
            problems.append(_missing("title", pointer))
        for field in ("title", "submit", "close"):
            if view.get(field) is not None:
                problems.extend(
                    check_text_object(view[field], f"{pointer}/{field}", max_length=VIEW_TITLE_MAX, plain_only=True)
                )
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if has_input and view.get("submit") is None:
            problems.append(_missing("submit", pointer))
    problems.extend(_check_str(view, "private_metadata", PRIVATE_METADATA_MAX, pointer))
    problems.extend(_check_id(view, "callback_id", pointer))
    problems.extend(_check_id(view, "external_id", pointer))
    return problems
