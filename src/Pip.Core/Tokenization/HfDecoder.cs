using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Pip.Tokenization;

/// <summary>
/// The <c>decoder</c> of a <c>tokenizer.json</c>: turns token strings back into text as Hugging Face <c>tokenizers</c>
/// does. Supports <c>ByteLevel</c>, <c>Metaspace</c>, <c>Replace</c>, <c>ByteFallback</c>, <c>Fuse</c>, <c>Strip</c>
/// and <c>Sequence</c>; a <c>null</c> decoder joins the tokens with spaces.
/// </summary>
internal sealed class HfDecoder
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly Func<List<string>, List<string>>[] _steps;
    private readonly bool _joinWithSpaces;

    private HfDecoder(Func<List<string>, List<string>>[] steps, bool joinWithSpaces)
    {
        _steps = steps;
        _joinWithSpaces = joinWithSpaces;
    }

    internal static HfDecoder Parse(JsonElement json, string file)
    {
        if (HfJson.IsNull(json))
        {
            return new HfDecoder([], joinWithSpaces: true);
        }

        var steps = new List<Func<List<string>, List<string>>>();
        Add(json, file, steps);
        return new HfDecoder([.. steps], joinWithSpaces: false);
    }

    internal string Decode(List<string> tokens)
    {
        List<string> current = tokens;
        foreach (Func<List<string>, List<string>> step in _steps)
        {
            current = step(current);
        }

        return string.Join(_joinWithSpaces ? " " : string.Empty, current);
    }

    private static void Add(JsonElement json, string file, List<Func<List<string>, List<string>>> steps)
    {
        string type = HfJson.TypeOf(json, file, "decoder");
        switch (type)
        {
            case "Sequence":
                foreach (JsonElement child in HfJson.RequiredArray(json, "decoders", file, "decoder Sequence").EnumerateArray())
                {
                    Add(child, file, steps);
                }

                break;
            case "ByteLevel":
                steps.Add(ByteLevel);
                break;
            case "ByteFallback":
                steps.Add(ByteFallback);
                break;
            case "Fuse":
                steps.Add(tokens => [string.Concat(tokens)]);
                break;
            case "Replace":
                Regex pattern = HfJson.Pattern(json, file, "decoder Replace");
                string content = HfJson.RequiredString(json, "content", file, "decoder Replace").Replace("$", "$$", StringComparison.Ordinal);
                steps.Add(tokens => tokens.ConvertAll(t => pattern.Replace(t, content)));
                break;
            case "Strip":
                string stripContent = HfJson.RequiredString(json, "content", file, "decoder Strip");
                if (stripContent.Length != 1)
                {
                    throw HfJson.Error(file, $"decoder Strip content '{stripContent}' must be one character.");
                }

                int start = HfJson.OptInt(json, "start", 0);
                int stop = HfJson.OptInt(json, "stop", 0);
                steps.Add(tokens => tokens.ConvertAll(t => Strip(t, stripContent[0], start, stop)));
                break;
            case "Metaspace":
                string replacement = HfJson.RequiredString(json, "replacement", file, "decoder Metaspace");
                if (replacement.Length != 1)
                {
                    throw HfJson.Error(file, $"decoder Metaspace replacement '{replacement}' must be one character.");
                }

                bool dropFirst = HfPreTokenizer.ParsePrependScheme(json, file, "decoder Metaspace") != MetaspacePrepend.Never;
                steps.Add(tokens => Metaspace(tokens, replacement[0], dropFirst));
                break;
            default:
                throw HfJson.Unsupported(file, "decoder", type);
        }
    }

    /// <summary>All tokens' characters to bytes (a token with a character outside the alphabet counts as its UTF-8), then lossy UTF-8.</summary>
    private static List<string> ByteLevel(List<string> tokens)
    {
        var bytes = new List<byte>();
        foreach (string token in tokens)
        {
            if (ByteLevelAlphabet.TryDecode(token, out byte[] b))
            {
                bytes.AddRange(b);
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(token));
            }
        }

        return [Encoding.UTF8.GetString(bytes.ToArray())];
    }

    /// <summary>Runs of <c>&lt;0xNN&gt;</c> tokens become their UTF-8 text, or one U+FFFD per byte when invalid.</summary>
    private static List<string> ByteFallback(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        var pending = new List<byte>();

        void Flush()
        {
            if (pending.Count == 0)
            {
                return;
            }

            try
            {
                result.Add(StrictUtf8.GetString(pending.ToArray()));
            }
            catch (DecoderFallbackException)
            {
                for (int i = 0; i < pending.Count; i++)
                {
                    result.Add("\uFFFD");
                }
            }

            pending.Clear();
        }

        foreach (string token in tokens)
        {
            if (TryParseByteToken(token, out byte b))
            {
                pending.Add(b);
            }
            else
            {
                Flush();
                result.Add(token);
            }
        }

        Flush();
        return result;
    }

    /// <summary>Whether <paramref name="token"/> is a byte-fallback token <c>&lt;0xNN&gt;</c>.</summary>
    internal static bool TryParseByteToken(string token, out byte value)
    {
        value = 0;
        return token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
            && byte.TryParse(token.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out value);
    }

    private static string Strip(string token, char content, int start, int stop)
    {
        int from = 0;
        while (from < start && from < token.Length && token[from] == content)
        {
            from++;
        }

        int to = token.Length;
        for (int i = 0; i < stop && to > from && token[to - 1] == content; i++)
        {
            to--;
        }

        return token[from..to];
    }

    private static List<string> Metaspace(List<string> tokens, char replacement, bool dropInFirst)
    {
        var result = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
        {
            string t = tokens[i];
            result.Add(i == 0 && dropInFirst
                ? t.Replace(replacement.ToString(), string.Empty, StringComparison.Ordinal)
                : t.Replace(replacement, ' '));
        }

        return result;
    }
}
