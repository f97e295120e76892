using System.Text.Json;
using System.Text.Json.Serialization;

namespace Pip;

/// <summary>Writes and reads <see cref="PruningReport"/> as JSON.</summary>
/// <remarks>
/// Format: snake_case property names, enums as snake_case strings, indented; a target is
/// <c>{"parameter_ratio": 0.2}</c> or <c>{"layers": 7}</c>; infinities and NaN are written as strings. Files are
/// written to a temporary file in the same folder and then moved into place, so a reader never sees half a report.
/// </remarks>
public static class PruningReportJson
{
    /// <summary>The serializer options of the format.</summary>
    public static JsonSerializerOptions SerializerOptions { get; } = CreateOptions();

    /// <summary>The report as JSON text.</summary>
    /// <param name="report">The report.</param>
    public static string Serialize(PruningReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        return JsonSerializer.Serialize(report, SerializerOptions);
    }

    /// <summary>A report from JSON text.</summary>
    /// <param name="json">The JSON text.</param>
    /// <exception cref="InvalidDataException">The text is not a report of a format this library reads.</exception>
    public static PruningReport Deserialize(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        return Deserialize(json, "the JSON text");
    }

    /// <summary>Writes a report to a file, atomically (temporary file, then move).</summary>
    /// <param name="report">The report.</param>
    /// <param name="path">The file; its folder is created if needed; an existing file is replaced.</param>
    /// <param name="cancellationToken">Cancels the write (the target file is then left as it was).</param>
    public static async Task WriteAsync(PruningReport report, string path, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string temp = PrepareTemp(path);
        try
        {
            await using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 65536, useAsync: true))
            {
                await JsonSerializer.SerializeAsync(stream, report, SerializerOptions, cancellationToken).ConfigureAwait(false);
            }

            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>Writes a report to a file, atomically (temporary file, then move).</summary>
    /// <param name="report">The report.</param>
    /// <param name="path">The file; its folder is created if needed; an existing file is replaced.</param>
    public static void Write(PruningReport report, string path)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string temp = PrepareTemp(path);
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                JsonSerializer.Serialize(stream, report, SerializerOptions);
            }

            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>Reads a report file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="cancellationToken">Cancels reading.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a report of a format this library reads.</exception>
    public static async Task<PruningReport> ReadAsync(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Report file '{path}' does not exist.", path);
        }

        string json = await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false);
        return Deserialize(json, $"report file '{path}'");
    }

    /// <summary>Reads a report file.</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a report of a format this library reads.</exception>
    public static PruningReport Read(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Report file '{path}' does not exist.", path);
        }

        return Deserialize(File.ReadAllText(path), $"report file '{path}'");
    }

    private static PruningReport Deserialize(string json, string what)
    {
        PruningReport? report;
        try
        {
            report = JsonSerializer.Deserialize<PruningReport>(json, SerializerOptions);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Cannot read {what} as a Pip pruning report: {e.Message}", e);
        }

        if (report is null)
        {
            throw new InvalidDataException($"Cannot read {what} as a Pip pruning report: it is JSON null.");
        }

        if (report.FormatVersion > PruningReport.CurrentFormatVersion || report.FormatVersion < 1)
        {
            throw new InvalidDataException($"Cannot read {what}: report format version {report.FormatVersion}; this library reads 1 to {PruningReport.CurrentFormatVersion}.");
        }

        return report;
    }

    private static string PrepareTemp(string path)
    {
        string full = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(full) ?? ".";
        Directory.CreateDirectory(directory);
        return Path.Combine(directory, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
    }

    private static JsonSerializerOptions CreateOptions()
    {
        var options = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            WriteIndented = true,
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
            DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        };
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false));
        options.Converters.Add(new PruningTargetConverter());
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }

    private sealed class PruningTargetConverter : JsonConverter<PruningTarget>
    {
        private const string RatioName = "parameter_ratio";
        private const string LayersName = "layers";

        public override PruningTarget Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                throw new JsonException("A pruning target must be an object with 'parameter_ratio' or 'layers'.");
            }

            double? ratio = null;
            int? layers = null;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
            {
                string name = reader.GetString() ?? string.Empty;
                reader.Read();
                if (name == RatioName)
                {
                    ratio = reader.GetDouble();
                }
                else if (name == LayersName)
                {
                    layers = reader.GetInt32();
                }
                else
                {
                    reader.Skip();
                }
            }

            return (ratio, layers) switch
            {
                ({ } r, null) => PruningTarget.Ratio(r),
                (null, { } l) => PruningTarget.LayerCount(l),
                _ => throw new JsonException("A pruning target needs exactly one of 'parameter_ratio' and 'layers'."),
            };
        }

        public override void Write(Utf8JsonWriter writer, PruningTarget value, JsonSerializerOptions options)
        {
            writer.WriteStartObject();
            if (value.ParameterRatio is { } ratio)
            {
                writer.WriteNumber(RatioName, ratio);
            }
            else
            {
                writer.WriteNumber(LayersName, value.Layers ?? 0);
            }

            writer.WriteEndObject();
        }
    }
}
