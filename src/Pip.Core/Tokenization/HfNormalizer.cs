using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Pip.Tokenization;

/// <summary>
/// The <c>normalizer</c> of a <c>tokenizer.json</c> as a Microsoft.ML.Tokenizers <see cref="Normalizer"/>:
/// <c>Sequence</c>, <c>Prepend</c>, <c>Replace</c>, <c>NFC</c>/<c>NFD</c>/<c>NFKC</c>/<c>NFKD</c>, <c>Lowercase</c>, <c>Strip</c>.
/// </summary>
internal sealed class HfNormalizer : Normalizer
{
    private readonly Func<string, string>[] _steps;

    private HfNormalizer(Func<string, string>[] steps) => _steps = steps;

    /// <summary>Builds the normalizer, or returns <see langword="null"/> for a JSON <c>null</c>.</summary>
    internal static HfNormalizer? Parse(JsonElement json, string file)
    {
        if (HfJson.IsNull(json))
        {
            return null;
        }

        var steps = new List<Func<string, string>>();
        Add(json, file, steps);
        return new HfNormalizer([.. steps]);
    }

    public override string Normalize(string original)
    {
        string s = original;
        foreach (Func<string, string> step in _steps)
        {
            s = step(s);
        }

        return s;
    }

    public override string Normalize(ReadOnlySpan<char> original) => Normalize(original.ToString());

    private static void Add(JsonElement json, string file, List<Func<string, string>> steps)
    {
        string type = HfJson.TypeOf(json, file, "normalizer");
        switch (type)
        {
            case "Sequence":
                foreach (JsonElement child in HfJson.RequiredArray(json, "normalizers", file, "normalizer Sequence").EnumerateArray())
                {
                    Add(child, file, steps);
                }

                break;
            case "Prepend":
                string prefix = HfJson.RequiredString(json, "prepend", file, "normalizer Prepend");
                steps.Add(s => s.Length == 0 ? s : prefix + s);
                break;
            case "Replace":
                Regex pattern = HfJson.Pattern(json, file, "normalizer Replace");
                string content = HfJson.RequiredString(json, "content", file, "normalizer Replace");
                steps.Add(s => pattern.Replace(s, content.Replace("$", "$$", StringComparison.Ordinal)));
                break;
            case "NFC":
                steps.Add(s => s.Normalize(NormalizationForm.FormC));
                break;
            case "NFD":
                steps.Add(s => s.Normalize(NormalizationForm.FormD));
                break;
            case "NFKC":
                steps.Add(s => s.Normalize(NormalizationForm.FormKC));
                break;
            case "NFKD":
                steps.Add(s => s.Normalize(NormalizationForm.FormKD));
                break;
            case "Lowercase":
                steps.Add(s => s.ToLowerInvariant());
                break;
            case "Strip":
                bool left = HfJson.OptBool(json, "strip_left", false);
                bool right = HfJson.OptBool(json, "strip_right", false);
                steps.Add(s => left && right ? s.Trim() : left ? s.TrimStart() : right ? s.TrimEnd() : s);
                break;
            default:
                throw HfJson.Unsupported(file, "normalizer", type);
        }
    }
}
