using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Pip.Cli.Infrastructure;

/// <summary>Writes command results: JSON (snake_case keys) or a two-column human table.</summary>
internal static class ResultWriter
{
    /// <summary>The JSON settings of every result: snake_case keys, indented, NaN/∞ as strings, nulls kept.</summary>
    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>Writes <paramref name="result"/> as one JSON object and a newline.</summary>
    public static void WriteJson<T>(TextWriter output, T result)
    {
        output.WriteLine(JsonSerializer.Serialize(result, JsonOptions));
        output.Flush();
    }

    /// <summary>Writes rows as an aligned two-column table (drawn as a table in a terminal run).</summary>
    public static void WriteTable(TextWriter output, IEnumerable<(string Key, string Value)> rows)
    {
        var list = rows.ToList();
        if (output is TerminalWriter terminal)
        {
            terminal.AddTable(list);
            return;
        }

        var width = list.Count == 0 ? 0 : list.Max(r => r.Key.Length);
        var text = new StringBuilder();
        foreach (var (key, value) in list) text.Append(key.PadRight(width)).Append("  ").Append(value).Append('\n');
        output.Write(text.ToString());
        output.Flush();
    }

    /// <summary>An integer with thousands separators.</summary>
    public static string Count(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>A number with a fixed number of decimals.</summary>
    public static string Number(double value, int decimals) => value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    /// <summary>Bytes in GiB, three decimals.</summary>
    public static double Gib(long bytes) => Math.Round(bytes / (1024.0 * 1024 * 1024), 3);
}
