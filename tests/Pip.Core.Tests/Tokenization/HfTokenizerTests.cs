using System.Text.Json.Nodes;
using Pip.Tokenization;
using static Pip.Core.Tests.Tokenization.TokenizerFixtures;

namespace Pip.Core.Tests.Tokenization;

public sealed class HfTokenizerTests : IDisposable
{
    private readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    private HfTokenizer LoadFixture(JsonNode tokenizer, JsonNode? tokenizerConfig = null, JsonNode? config = null, string name = "model") =>
        HfTokenizer.Load(Write(Path.Combine(_temp.Path, name), tokenizer, tokenizerConfig, config));

    private HfTokenizer Gpt2(bool ignoreMerges = false) => LoadFixture(Gpt2Style(ignoreMerges), Gpt2Config());

    private HfTokenizer Llama(string? metaspace = null, bool byteFallback = true, bool metaspaceDecoder = false) =>
        LoadFixture(LlamaStyle(metaspace, byteFallback, metaspaceDecoder), LlamaConfig());

    public static TheoryData<string> RoundTripTexts => new()
    {
        "hello world",
        "Hello, World!",
        " leading space",
        "trailing space ",
        "two  spaces and   three",
        "line one\nline two\n\nline four\n",
        "tabs\tand\r\nwindows newlines",
        "café naïve Ünïcödé",
        "日本語と中文",
        "emoji 😀👍🏽 family 👨‍👩‍👧",
        "numbers 12345 and 3.14",
        "",
    };

    // ---- byte-level BPE (GPT-2 style) ----

    [Theory]
    [InlineData("hello world", new[] { 259, 264 })]          // "hello" + "Ġworld", both fully merged
    [InlineData("hell", new[] { 258 })]                      // he, ll, hell
    [InlineData("ello", new[] { 101, 257, 111 })]            // only "l l" applies: e, ll, o
    [InlineData("orld", new[] { 261, 263 })]                 // "o r" then "l d"; no merge joins them
    [InlineData("Hello", new[] { 72, 101, 257, 111 })]       // "H e" is no merge
    [InlineData("a   b", new[] { 97, 265, 32, 98 })]         // GPT-2 regex: "a", "  " (ĠĠ), " b"
    [InlineData("hello\n", new[] { 259, 10 })]               // newline byte 0x0A
    [InlineData("😀", new[] { 240, 159, 152, 128 })]        // UTF-8 F0 9F 98 80, one id per byte
    [InlineData("hello<|endoftext|> world", new[] { 259, EndOfText, 264 })]
    public void Encode_ByteLevelFixture_MatchesIdsWorkedOutFromMerges(string text, int[] expected)
    {
        Gpt2().Encode(text, addBos: false).Should().Equal(expected);
    }

    [Theory]
    [MemberData(nameof(RoundTripTexts))]
    public void DecodeEncode_ByteLevelFixture_RoundTrips(string text)
    {
        HfTokenizer tok = Gpt2();
        tok.Decode(tok.Encode(text, addBos: false)).Should().Be(text);
    }

    [Fact]
    public void Decode_ByteLevelSpecialToken_SkippedUnlessAsked()
    {
        HfTokenizer tok = Gpt2();
        int[] ids = tok.Encode("hello<|endoftext|> world", addBos: false);
        tok.Decode(ids).Should().Be("hello world");
        tok.Decode(ids, skipSpecialTokens: false).Should().Be("hello<|endoftext|> world");
    }

    [Fact]
    public void Decode_SplitUtf8AcrossTokens_JoinsBytes()
    {
        // The two bytes of "é" (C3 A9) as separate byte tokens decode to one character; a lone C3 is U+FFFD.
        HfTokenizer tok = Gpt2();
        tok.Decode([104, 0xC3, 0xA9]).Should().Be("hé");
        tok.Decode([0xC3]).Should().Be("\uFFFD");
    }

    [Fact]
    public void Encode_IgnoreMerges_TakesWholeWordFromVocabulary()
    {
        Gpt2(ignoreMerges: false).Encode("orld", addBos: false).Should().Equal(261, 263);
        Gpt2(ignoreMerges: true).Encode("orld", addBos: false).Should().Equal(Orld);
        Gpt2(ignoreMerges: true).Encode("hello world", addBos: false).Should().Equal(259, 264);
    }

    [Theory]
    [InlineData("hello world", new[] { 259, 264 })]
    [InlineData("a   b", new[] { 97, 265, 32, 98 })]
    [InlineData("hello\n\nhello", new[] { 259, 10, 10, 259 })]
    public void Encode_Llama3StylePreTokenizer_SplitsThenMapsBytes(string text, int[] expected)
    {
        // Llama 3 writes Sequence[Split(regex, Isolated), ByteLevel(use_regex: false)].
        JsonObject json = Gpt2Style();
        json["pre_tokenizer"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["pretokenizers"] = new JsonArray(
                new JsonObject
                {
                    ["type"] = "Split",
                    ["pattern"] = new JsonObject { ["Regex"] = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+" },
                    ["behavior"] = "Isolated",
                    ["invert"] = false,
                },
                new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false }),
        };
        LoadFixture(json).Encode(text, addBos: false).Should().Equal(expected);
    }

    [Fact]
    public void Load_SequencePostProcessorWithTemplate_AddsBosByDefault()
    {
        // Llama 3.1 writes Sequence[ByteLevel, TemplateProcessing(<|begin_of_text|> $A)] and no add_bos_token.
        JsonObject json = Gpt2Style();
        json["post_processor"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["processors"] = new JsonArray(
                new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = false, ["use_regex"] = true },
                new JsonObject
                {
                    ["type"] = "TemplateProcessing",
                    ["single"] = new JsonArray(
                        new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<|endoftext|>", ["type_id"] = 0 } },
                        new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
                    ["pair"] = new JsonArray(),
                    ["special_tokens"] = new JsonObject
                    {
                        ["<|endoftext|>"] = new JsonObject { ["id"] = "<|endoftext|>", ["ids"] = new JsonArray(EndOfText), ["tokens"] = new JsonArray("<|endoftext|>") },
                    },
                }),
        };
        HfTokenizer tok = LoadFixture(json, Gpt2Config());
        tok.AddBosByDefault.Should().BeTrue();
        tok.Encode("hello").Should().Equal(EndOfText, 259);
    }

    [Fact]
    public void Load_Gpt2Config_ReadsBosEosAndNoDefaultBos()
    {
        HfTokenizer tok = Gpt2();
        tok.BosTokenId.Should().Be(EndOfText);
        tok.EosTokenId.Should().Be(EndOfText);
        tok.EosTokenIds.Should().Equal(EndOfText);
        tok.AddBosByDefault.Should().BeFalse();
        tok.VocabSize.Should().Be(268);
        tok.Encode("hello").Should().Equal(259);
        tok.Encode("hello", addBos: true).Should().Equal(EndOfText, 259);
    }

    [Fact]
    public void Load_OnlyConfigJson_TakesBosAndEosIdsFromIt()
    {
        var config = new JsonObject { ["bos_token_id"] = 10, ["eos_token_id"] = new JsonArray(EndOfText, 10) };
        HfTokenizer tok = LoadFixture(Gpt2Style(), tokenizerConfig: null, config: config);
        tok.BosTokenId.Should().Be(10);
        tok.EosTokenId.Should().Be(EndOfText);
        tok.EosTokenIds.Should().Equal(EndOfText, 10);
        tok.AddBosByDefault.Should().BeFalse();
    }

    [Fact]
    public void Load_NoBosAnywhere_EncodeWithBosThrows()
    {
        HfTokenizer tok = LoadFixture(Gpt2Style());
        tok.BosTokenId.Should().BeNull();
        tok.Encode("hello", addBos: false).Should().Equal(259);
        FluentActions.Invoking(() => tok.Encode("hello", addBos: true)).Should().Throw<InvalidOperationException>().WithMessage("*BOS*");
    }

    [Fact]
    public void TokenToIdAndBack_KnowsVocabularyAndAddedTokens()
    {
        HfTokenizer tok = Gpt2();
        tok.TokenToId("Ġworld").Should().Be(264);
        tok.TokenToId("<|endoftext|>").Should().Be(EndOfText);
        tok.TokenToId("nope").Should().BeNull();
        tok.IdToToken(258).Should().Be("hell");
        tok.IdToToken(100_000).Should().BeNull();
    }

    // ---- SentencePiece-style BPE (Llama 2 style) ----

    [Theory]
    [InlineData("hello world", new[] { 271, 276 })]                          // ▁hello ▁world
    [InlineData(" hello", new[] { Space, 271 })]                             // Prepend gives ▁▁hello; "▁ h" outranks "▁ ▁"
    [InlineData("hé", new[] { 267, 3 + 0xC3, 3 + 0xA9 })]                    // é is not in the vocabulary: bytes C3 A9
    [InlineData("hello\nworld", new[] { 271, 3 + 0x0A, W, 272, L, D })]     // "\n" is a byte token; "world" has no ▁ before it
    [InlineData("😀", new[] { Space, 3 + 0xF0, 3 + 0x9F, 3 + 0x98, 3 + 0x80 })]
    [InlineData("hello</s>world", new[] { 271, 2, 276 })]                    // each segment is normalized, so gets its own ▁
    [InlineData("", new int[0])]
    public void Encode_SentencePieceFixture_MatchesIdsWorkedOutFromMerges(string text, int[] expected)
    {
        Llama().Encode(text, addBos: false).Should().Equal(expected);
    }

    [Theory]
    [InlineData("hello world", new[] { 271, 276 })]
    [InlineData(" hello", new[] { 271 })]                                    // Metaspace: no second ▁ before a space
    [InlineData("hello</s>world", new[] { 271, 2, W, 272, L, D })]          // prepend_scheme "first": only at the start
    public void Encode_MetaspaceFirst_MatchesIdsWorkedOutFromMerges(string text, int[] expected)
    {
        Llama(metaspace: "first").Encode(text, addBos: false).Should().Equal(expected);
    }

    [Fact]
    public void Encode_MetaspaceAlways_PrependsToEverySegment()
    {
        Llama(metaspace: "always").Encode("hello</s>world", addBos: false).Should().Equal(271, 2, 276);
    }

    [Fact]
    public void DecodeEncode_MetaspaceDecoder_RemovesFirstReplacementOnly()
    {
        HfTokenizer tok = Llama(metaspace: "always", metaspaceDecoder: true);
        int[] ids = tok.Encode("hello world\nnext");
        ids.Should().StartWith([1, 271, 276, 3 + 0x0A]);
        tok.Decode(ids).Should().Be("hello world\nnext");
    }

    [Fact]
    public void Encode_NoByteFallback_UnknownCharactersFuseIntoOneUnk()
    {
        Llama(byteFallback: false).Encode("hé€", addBos: false).Should().Equal(267, 0);
    }

    [Theory]
    [MemberData(nameof(RoundTripTexts))]
    public void DecodeEncode_SentencePieceFixture_RoundTrips(string text)
    {
        HfTokenizer tok = Llama();
        tok.Decode(tok.Encode(text)).Should().Be(text);
    }

    [Fact]
    public void DecodeEncode_MetaspaceFirst_DropsLeadingSpaceLikeHuggingFace()
    {
        HfTokenizer tok = Llama(metaspace: "first");
        tok.Decode(tok.Encode("hello world\nnext")).Should().Be("hello world\nnext");
        tok.Decode(tok.Encode(" hello")).Should().Be("hello");
    }

    [Fact]
    public void Decode_SentencePieceSpecialTokens_KeptWhenAsked()
    {
        HfTokenizer tok = Llama();
        tok.Decode([1, 271, 276, 2]).Should().Be("hello world");
        tok.Decode([1, 271, 276], skipSpecialTokens: false).Should().Be("<s> hello world");
        tok.Decode([3 + 0xC3]).Should().Be("\uFFFD");
    }

    [Fact]
    public void Encode_SentencePieceWithAddBosToken_PutsBosFirstByDefault()
    {
        HfTokenizer tok = Llama();
        tok.AddBosByDefault.Should().BeTrue();
        tok.BosTokenId.Should().Be(1);
        tok.EosTokenId.Should().Be(2);
        tok.VocabSize.Should().Be(278);
        tok.Encode("hello world").Should().Equal(1, 271, 276);
        tok.Encode("hello world", addBos: false).Should().Equal(271, 276);
    }

    [Fact]
    public void Load_AddBosTokenFalse_OverridesTemplate()
    {
        HfTokenizer tok = LoadFixture(LlamaStyle(), LlamaConfig(addBos: false));
        tok.AddBosByDefault.Should().BeFalse();
        tok.Encode("hello").Should().Equal(271);
    }

    [Fact]
    public void Load_NoTokenizerConfig_BosFromTemplateProcessing()
    {
        HfTokenizer tok = LoadFixture(LlamaStyle());
        tok.BosTokenId.Should().Be(1);
        tok.AddBosByDefault.Should().BeTrue();
        tok.Encode("hello").Should().Equal(1, 271);
    }

    // ---- errors ----

    [Theory]
    [InlineData("Unigram")]
    [InlineData("WordPiece")]
    public void Load_UnsupportedModelType_ThrowsNamingFileAndType(string type)
    {
        JsonObject json = Gpt2Style();
        json["model"]!["type"] = type;
        FluentActions.Invoking(() => LoadFixture(json))
            .Should().Throw<InvalidDataException>().WithMessage($"*tokenizer.json*{type}*not supported*");
    }

    [Theory]
    [InlineData("pre_tokenizer", "BertPreTokenizer")]
    [InlineData("normalizer", "Precompiled")]
    [InlineData("decoder", "WordPiece")]
    public void Load_UnsupportedComponent_ThrowsNamingFileAndItem(string section, string type)
    {
        JsonObject json = Gpt2Style();
        json[section] = new JsonObject { ["type"] = type };
        FluentActions.Invoking(() => LoadFixture(json))
            .Should().Throw<InvalidDataException>().WithMessage($"*tokenizer.json*{section}*{type}*");
    }

    [Fact]
    public void Load_MergeOfUnknownToken_ThrowsInvalidData()
    {
        JsonObject json = Gpt2Style();
        json["model"]!["merges"]!.AsArray().Add("zz q");
        FluentActions.Invoking(() => LoadFixture(json))
            .Should().Throw<InvalidDataException>().WithMessage("*tokenizer.json*");
    }

    [Fact]
    public void Load_BosTokenNotInVocabulary_ThrowsNamingTokenizerConfig()
    {
        var config = new JsonObject { ["bos_token"] = "<nope>" };
        FluentActions.Invoking(() => LoadFixture(Gpt2Style(), config))
            .Should().Throw<InvalidDataException>().WithMessage("*tokenizer_config.json*<nope>*");
    }

    [Fact]
    public void Load_NoTokenizerJson_ThrowsFileNotFound()
    {
        FluentActions.Invoking(() => HfTokenizer.Load(_temp.Path))
            .Should().Throw<FileNotFoundException>().WithMessage("*tokenizer.json*");
    }

    [Fact]
    public void Load_MalformedJson_ThrowsInvalidData()
    {
        string folder = Path.Combine(_temp.Path, "bad");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), "{ not json");
        FluentActions.Invoking(() => HfTokenizer.Load(folder))
            .Should().Throw<InvalidDataException>().WithMessage("*tokenizer.json*not valid JSON*");
    }
}
