using System.Text.Json.Nodes;

namespace Pip.Core.Tests.Tokenization;

/// <summary>A temporary folder deleted on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "pip-tok-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>
/// Small tokenizer.json files written for the tests, with ids that the tests work out by hand from the merges.
/// The byte-to-character table is re-derived here (not taken from Pip) so the fixtures are independent.
/// </summary>
internal static class TokenizerFixtures
{
    /// <summary>GPT-2's bytes_to_unicode, written independently of Pip.ByteLevelAlphabet.</summary>
    public static char[] Gpt2ByteChars()
    {
        var printable = new List<int>();
        for (int b = '!'; b <= '~'; b++) printable.Add(b);
        for (int b = 0xA1; b <= 0xAC; b++) printable.Add(b);
        for (int b = 0xAE; b <= 0xFF; b++) printable.Add(b);
        var chars = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            chars[b] = printable.Contains(b) ? (char)b : (char)(256 + n++);
        }

        return chars;
    }

    /// <summary>The merges of the GPT-2-style fixture; merge i creates token 256 + i.</summary>
    public static readonly (string Left, string Right)[] Gpt2Merges =
    [
        ("h", "e"),       // 256 he
        ("l", "l"),       // 257 ll
        ("he", "ll"),     // 258 hell
        ("hell", "o"),    // 259 hello
        ("Ġ", "w"),       // 260 Ġw
        ("o", "r"),       // 261 or
        ("Ġw", "or"),     // 262 Ġwor
        ("l", "d"),       // 263 ld
        ("Ġwor", "ld"),   // 264 Ġworld
        ("Ġ", "Ġ"),       // 265 ĠĠ
    ];

    public const int EndOfText = 266;

    /// <summary>"orld": in the vocabulary but not reachable through merges (only through ignore_merges).</summary>
    public const int Orld = 267;

    /// <summary>
    /// GPT-2-style byte-level BPE: ids 0..255 are the bytes in byte order, 256..265 the merges above,
    /// 266 the special token &lt;|endoftext|&gt;, 267 "orld".
    /// </summary>
    public static JsonObject Gpt2Style(bool ignoreMerges = false)
    {
        char[] byteChars = Gpt2ByteChars();
        var vocab = new JsonObject();
        for (int b = 0; b < 256; b++)
        {
            vocab[byteChars[b].ToString()] = b;
        }

        var merges = new JsonArray();
        for (int i = 0; i < Gpt2Merges.Length; i++)
        {
            vocab[Gpt2Merges[i].Left + Gpt2Merges[i].Right] = 256 + i;
            merges.Add($"{Gpt2Merges[i].Left} {Gpt2Merges[i].Right}");
        }

        vocab["<|endoftext|>"] = EndOfText;
        vocab["orld"] = Orld;

        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = new JsonArray(AddedToken(EndOfText, "<|endoftext|>")),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = false, ["use_regex"] = true },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = null,
                ["continuing_subword_prefix"] = "",
                ["end_of_word_suffix"] = "",
                ["fuse_unk"] = false,
                ["byte_fallback"] = false,
                ["ignore_merges"] = ignoreMerges,
                ["vocab"] = vocab,
                ["merges"] = merges,
            },
        };
    }

    /// <summary>
    /// The merges of the Llama-2-style fixture, in rank order, with the id of the token each creates.
    /// </summary>
    public static readonly (string Left, string Right, int Id)[] LlamaMerges =
    [
        ("▁", "h", 267),
        ("l", "l", 268),
        ("▁h", "e", 269),
        ("▁he", "ll", 270),
        ("▁hell", "o", 271),
        ("o", "r", 272),
        ("▁", "w", 273),
        ("▁w", "or", 274),
        ("▁wor", "l", 275),
        ("▁worl", "d", 276),
        ("▁", "▁", 277),
    ];

    /// <summary>Ids of the Llama-2-style fixture's single characters.</summary>
    public const int Space = 259, H = 260, E = 261, L = 262, O = 263, W = 264, R = 265, D = 266;

    /// <summary>The id of byte-fallback token &lt;0xNN&gt; in the Llama-2-style fixture.</summary>
    public static int ByteToken(int b) => 3 + b;

    /// <summary>
    /// SentencePiece-style BPE as Llama 2 writes it: 0 &lt;unk&gt;, 1 &lt;s&gt;, 2 &lt;/s&gt;, 3..258 &lt;0x00&gt;..&lt;0xFF&gt;,
    /// 259.. the characters ▁ h e l o w r d, then the merges above; byte_fallback, Prepend("▁") + Replace(" ", "▁")
    /// normalizer and a Replace/ByteFallback/Fuse/Strip decoder. With <paramref name="metaspace"/>: a Metaspace pre-tokenizer
    /// with that prepend scheme instead of the normalizer (as Mistral writes it), and with <paramref name="metaspaceDecoder"/>
    /// a ByteFallback + Metaspace decoder.
    /// </summary>
    public static JsonObject LlamaStyle(string? metaspace = null, bool byteFallback = true, bool metaspaceDecoder = false)
    {
        var vocab = new JsonObject { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2 };
        for (int b = 0; b < 256; b++)
        {
            vocab[$"<0x{b:X2}>"] = ByteToken(b);
        }

        string[] chars = ["▁", "h", "e", "l", "o", "w", "r", "d"];
        for (int i = 0; i < chars.Length; i++)
        {
            vocab[chars[i]] = Space + i;
        }

        var merges = new JsonArray();
        foreach ((string left, string right, int id) in LlamaMerges)
        {
            vocab[left + right] = id;
            merges.Add($"{left} {right}");
        }

        JsonNode? normalizer = new JsonObject
        {
            ["type"] = "Sequence",
            ["normalizers"] = new JsonArray(
                new JsonObject { ["type"] = "Prepend", ["prepend"] = "▁" },
                new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "▁" }),
        };
        JsonNode? preTokenizer = null;
        JsonNode decoder = new JsonObject
        {
            ["type"] = "Sequence",
            ["decoders"] = new JsonArray(
                new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = "▁" }, ["content"] = " " },
                new JsonObject { ["type"] = "ByteFallback" },
                new JsonObject { ["type"] = "Fuse" },
                new JsonObject { ["type"] = "Strip", ["content"] = " ", ["start"] = 1, ["stop"] = 0 }),
        };
        if (metaspace is not null)
        {
            normalizer = null;
            preTokenizer = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "▁", ["prepend_scheme"] = metaspace, ["split"] = false };
            if (metaspaceDecoder)
            {
                decoder = new JsonObject
                {
                    ["type"] = "Sequence",
                    ["decoders"] = new JsonArray(
                        new JsonObject { ["type"] = "ByteFallback" },
                        new JsonObject { ["type"] = "Metaspace", ["replacement"] = "▁", ["prepend_scheme"] = metaspace, ["split"] = false }),
                };
            }
        }

        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = new JsonArray(AddedToken(0, "<unk>"), AddedToken(1, "<s>"), AddedToken(2, "</s>")),
            ["normalizer"] = normalizer,
            ["pre_tokenizer"] = preTokenizer,
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(
                    new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<s>", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
                ["pair"] = new JsonArray(
                    new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<s>", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } },
                    new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<s>", ["type_id"] = 1 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "B", ["type_id"] = 1 } }),
                ["special_tokens"] = new JsonObject
                {
                    ["<s>"] = new JsonObject { ["id"] = "<s>", ["ids"] = new JsonArray(1), ["tokens"] = new JsonArray("<s>") },
                },
            },
            ["decoder"] = decoder,
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = "<unk>",
                ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null,
                ["fuse_unk"] = true,
                ["byte_fallback"] = byteFallback,
                ["vocab"] = vocab,
                ["merges"] = merges,
            },
        };
    }

    public static JsonObject LlamaConfig(bool? addBos = true)
    {
        var config = new JsonObject
        {
            ["bos_token"] = new JsonObject { ["__type"] = "AddedToken", ["content"] = "<s>", ["lstrip"] = false, ["normalized"] = false, ["rstrip"] = false, ["single_word"] = false },
            ["eos_token"] = "</s>",
            ["unk_token"] = "<unk>",
            ["tokenizer_class"] = "LlamaTokenizer",
        };
        if (addBos is bool b)
        {
            config["add_bos_token"] = b;
        }

        return config;
    }

    public static JsonObject Gpt2Config() => new()
    {
        ["bos_token"] = "<|endoftext|>",
        ["eos_token"] = "<|endoftext|>",
        ["tokenizer_class"] = "GPT2Tokenizer",
    };

    /// <summary>Writes the files given (null entries are left out) into <paramref name="folder"/>.</summary>
    public static string Write(string folder, JsonNode tokenizer, JsonNode? tokenizerConfig = null, JsonNode? config = null)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), tokenizer.ToJsonString());
        if (tokenizerConfig is not null)
        {
            File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), tokenizerConfig.ToJsonString());
        }

        if (config is not null)
        {
            File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());
        }

        return folder;
    }

    private static JsonObject AddedToken(int id, string content) => new()
    {
        ["id"] = id,
        ["content"] = content,
        ["single_word"] = false,
        ["lstrip"] = false,
        ["rstrip"] = false,
        ["normalized"] = false,
        ["special"] = true,
    };
}
