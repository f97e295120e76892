using System.Text.Json;
using System.Text.RegularExpressions;

namespace Pip.Tokenization;

/// <summary>Helpers to read the pieces of a Hugging Face <c>tokenizer.json</c> with errors that name the file.</summary>
internal static class HfJson
{
    /// <summary>Regex options for the patterns of <c>tokenizer.json</c> (written for Oniguruma/Rust regex).</summary>
    internal const RegexOptions PatternOptions = RegexOptions.CultureInvariant | RegexOptions.Compiled;

    internal static InvalidDataException Error(string file, string message) => new($"{file}: {message}");

    internal static InvalidDataException Unsupported(string file, string section, string item) =>
        new($"{file}: {section} '{item}' is not supported by Pip's Hugging Face tokenizer loader.");

    internal static string TypeOf(JsonElement e, string file, string section)
    {
        if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("type", out JsonElement t) || t.ValueKind != JsonValueKind.String)
        {
            throw Error(file, $"{section} has no \"type\".");
        }

        return t.GetString()!;
    }

    internal static bool IsNull(JsonElement e) => e.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined;

    internal static string? OptString(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()
            : null;

    internal static bool OptBool(JsonElement obj, string name, bool fallback) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out JsonElement v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? v.GetBoolean()
            : fallback;

    internal static int OptInt(JsonElement obj, string name, int fallback) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.Number
            ? v.GetInt32()
            : fallback;

    internal static string RequiredString(JsonElement obj, string name, string file, string section) =>
        OptString(obj, name) ?? throw Error(file, $"{section} has no string \"{name}\".");

    internal static JsonElement RequiredArray(JsonElement obj, string name, string file, string section)
    {
        if (obj.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.Array)
        {
            return v;
        }

        throw Error(file, $"{section} has no array \"{name}\".");
    }

    /// <summary>Reads a <c>{"String": "..."}</c> or <c>{"Regex": "..."}</c> pattern as a regex.</summary>
    internal static Regex Pattern(JsonElement obj, string file, string section)
    {
        if (!obj.TryGetProperty("pattern", out JsonElement p) || p.ValueKind != JsonValueKind.Object)
        {
            throw Error(file, $"{section} has no \"pattern\" object.");
        }

        if (p.TryGetProperty("String", out JsonElement s) && s.ValueKind == JsonValueKind.String)
        {
            return new Regex(Regex.Escape(s.GetString()!), RegexOptions.CultureInvariant);
        }

        if (p.TryGetProperty("Regex", out JsonElement r) && r.ValueKind == JsonValueKind.String)
        {
            try
            {
                return new Regex(r.GetString()!, PatternOptions);
            }
            catch (ArgumentException ex)
            {
                throw Error(file, $"{section} regex '{r.GetString()}' cannot be used by .NET: {ex.Message}");
            }
        }

        throw Error(file, $"{section} pattern must be {{\"String\": ...}} or {{\"Regex\": ...}}.");
    }
}
