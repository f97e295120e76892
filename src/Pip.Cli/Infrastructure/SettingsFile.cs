using System.Collections;
using System.CommandLine;
using System.CommandLine.Help;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using TorchSharp;

namespace Pip.Cli.Infrastructure;

/// <summary>A command line completed from a settings file.</summary>
/// <param name="File">The settings file (full path).</param>
/// <param name="Args">The completed command line.</param>
/// <param name="Added">The <c>--name=value</c> tokens taken from the file.</param>
internal sealed record SettingsMerge(string File, string[] Args, IReadOnlyList<string> Added);

/// <summary>
/// Settings files: every option of every command can also come from a JSON file given with <c>--settings FILE</c>,
/// and a command that writes an output folder records its effective settings there (<see cref="FileName"/>), so that
/// <c>--settings</c> repeats the run.
/// </summary>
/// <remarks>
/// <para>The file is one JSON object read with Microsoft.Extensions.Configuration (JSON provider; lists bound with the
/// configuration binder). Its keys are the command's option names without the dashes (<c>"max-tokens": 64</c>;
/// case-insensitive, <c>_</c> may stand for <c>-</c>); a list option takes a JSON array. The optional key
/// <c>"command"</c> names the command the file is for. A key that names no option of the command is an error that names the
/// file and the key. Relative paths (options whose value is a FILE or DIR) are relative to the settings file's folder.</para>
/// <para>Precedence: an option given on the command line &gt; the settings file &gt; the option's default. Values from the
/// file are parsed and validated exactly as command-line values (they are added to the command line as
/// <c>--name=value</c> before parsing), so a command needs nothing to support settings files.</para>
/// </remarks>
internal static class SettingsFile
{
    /// <summary>The name of the option that names a settings file.</summary>
    public const string OptionName = "--settings";

    /// <summary>The name of the effective-settings file written into a command's <c>--out</c> folder.</summary>
    public const string FileName = "settings.json";

    /// <summary>The key naming the command a settings file is for.</summary>
    public const string CommandKey = "command";

    /// <summary>The option named <c>--out</c>: the folder the effective settings go to.</summary>
    private const string OutOptionName = "--out";

    /// <summary>Options whose effective value is not recorded: where the settings come from, and what must be asked for each time.</summary>
    private static readonly HashSet<string> NotRecorded = [OptionName, "--overwrite", GlobalOptions.LogLevelName];

    /// <summary><c>--settings FILE</c> (recursive: every command has it).</summary>
    public static Option<string?> CreateOption() => new(OptionName)
    {
        Description = "A JSON file of option values (keys: option names without the dashes, e.g. {\"max-tokens\": 64}); options given on the command line take precedence. Runs that write an --out folder save their effective settings there as settings.json.",
        HelpName = "FILE",
        Recursive = true,
    };

    /// <summary>
    /// The command line with the values of the settings file named by <c>--settings</c> added for every option the
    /// command line does not give, or null when no settings file is named.
    /// </summary>
    /// <exception cref="CliInputException">The file is missing or malformed, or has a key that names no option of the command.</exception>
    public static SettingsMerge? Merge(ParseResult parsed, IReadOnlyList<string> args)
    {
        var file = parsed.GetValue<string?>(OptionName);
        if (string.IsNullOrWhiteSpace(file)) return null;
        var path = Path.GetFullPath(file);
        var configuration = Load(path);
        var command = parsed.CommandResult.Command;
        var options = OptionsOf(parsed);
        var byKey = new Dictionary<string, Option>(StringComparer.OrdinalIgnoreCase);
        foreach (var option in options) byKey[Key(option)] = option;

        var folder = Path.GetDirectoryName(path)!;
        var added = new List<string>();
        var seen = new Dictionary<Option, string>();
        foreach (var section in configuration.GetChildren())
        {
            var key = section.Key.Replace('_', '-');
            if (string.Equals(key, CommandKey, StringComparison.OrdinalIgnoreCase))
            {
                if (!string.Equals(section.Value, command.Name, StringComparison.Ordinal))
                    throw new CliInputException($"Settings file '{path}': \"{CommandKey}\" is '{section.Value}', but the command is '{command.Name}'.");
                continue;
            }

            if (!byKey.TryGetValue(key, out var option) || NotReadable(option))
                throw new CliInputException($"Settings file '{path}': unknown key '{section.Key}'; '{command.Name}' accepts {string.Join(", ", byKey.Keys.Where(k => !NotReadable(byKey[k])).Order(StringComparer.Ordinal))}.");
            if (!seen.TryAdd(option, section.Key))
                throw new CliInputException($"Settings file '{path}': keys '{seen[option]}' and '{section.Key}' both set {option.Name}.");
            if (parsed.GetResult(option) is { Implicit: false }) continue;

            var isList = option.Arity.MaximumNumberOfValues > 1;
            var values = isList ? section.Get<string[]>() ?? [] : section.GetChildren().Any()
                ? throw new CliInputException($"Settings file '{path}': key '{section.Key}' must be a single value, not an object or a list.")
                : section.Value is { Length: > 0 } v ? [v] : [];
            foreach (var value in values)
                added.Add($"{option.Name}={(IsPath(option) && !Path.IsPathRooted(value) ? Path.GetFullPath(value, folder) : value)}");
        }

        // Added before a "--" (after it, everything is an argument), else at the end.
        var merged = args.ToList();
        var end = merged.IndexOf("--");
        merged.InsertRange(end < 0 ? merged.Count : end, added);
        return new SettingsMerge(path, [.. merged], added);
    }

    /// <summary>
    /// Writes the effective settings of a successful run into its <c>--out</c> folder (when the command has one and it
    /// exists), atomically. Returns the file written, or null.
    /// </summary>
    public static string? WriteEffective(ParseResult parsed, ILogger logger)
    {
        var outOption = OptionsOf(parsed).FirstOrDefault(o => o.Name == OutOptionName);
        if (outOption is null || parsed.GetResult(outOption)?.Tokens.FirstOrDefault()?.Value is not { } outValue) return null;
        var folder = Path.GetFullPath(outValue);
        if (!Directory.Exists(folder)) return null;

        var json = Effective(parsed);
        var file = Path.Combine(folder, FileName);
        var temporary = Path.Combine(folder, $".{FileName}.{Guid.NewGuid():N}.tmp");
        try
        {
            File.WriteAllText(temporary, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + Environment.NewLine);
            File.Move(temporary, file, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }

        logger.LogDebug("Effective settings written to {File}.", file);
        return file;
    }

    /// <summary>The effective settings of a parse: the command's name and every recorded option's value (given or default; paths made absolute; unset values left out).</summary>
    internal static JsonObject Effective(ParseResult parsed)
    {
        var json = new JsonObject { [CommandKey] = parsed.CommandResult.Command.Name };
        foreach (var option in OptionsOf(parsed).Where(o => !NotReadable(o) && !NotRecorded.Contains(o.Name)).OrderBy(Key, StringComparer.Ordinal))
        {
            var result = parsed.GetResult(option);
            object? value = result is null ? DefaultOf(option) : result.GetValueOrDefault<object?>();
            if (ToJson(value, IsPath(option)) is { } node) json[Key(option)] = node;
        }

        return json;
    }

    /// <summary>The options of the parsed command: its own and the recursive ones of its ancestors.</summary>
    private static List<Option> OptionsOf(ParseResult parsed)
    {
        var command = parsed.CommandResult.Command;
        var options = command.Options.ToList();
        for (var parent = parsed.CommandResult.Parent; parent is System.CommandLine.Parsing.CommandResult p; parent = p.Parent)
            options.AddRange(p.Command.Options.Where(o => o.Recursive && options.All(x => x.Name != o.Name)));
        return options;
    }

    /// <summary>Options a settings file cannot set: help, version and --settings itself.</summary>
    private static bool NotReadable(Option option) => option is HelpOption or VersionOption || option.Name == OptionName;

    private static string Key(Option option) => option.Name.TrimStart('-');

    private static bool IsPath(Option option) => option.HelpName is "FILE" or "DIR";

    private static object? DefaultOf(Option option) =>
        option.HasDefaultValue ? option.GetDefaultValue() : option.ValueType == typeof(bool) ? false : null;

    private static IConfigurationRoot Load(string path)
    {
        if (Directory.Exists(path)) throw new CliInputException($"Settings file '{path}' is a folder.");
        if (!File.Exists(path)) throw new CliInputException($"Settings file '{path}' does not exist.");
        try
        {
            return new ConfigurationBuilder().AddJsonFile(path, optional: false, reloadOnChange: false).Build();
        }
        catch (Exception e) when (e is FormatException or InvalidDataException or JsonException)
        {
            throw new CliInputException($"Settings file '{path}' is not a JSON object of option values: {(e.InnerException ?? e).Message}", e);
        }
    }

    private static JsonNode? ToJson(object? value, bool isPath) => value switch
    {
        null => null,
        string s when isPath => JsonValue.Create(Path.GetFullPath(s)),
        string s => JsonValue.Create(s),
        bool b => JsonValue.Create(b),
        int or long or short or byte => JsonValue.Create(Convert.ToInt64(value, CultureInfo.InvariantCulture)),
        double d => JsonValue.Create(d),
        float f => JsonValue.Create((double)f),
        torch.ScalarType type => JsonValue.Create(CommonOptions.DtypeName(type)),
        torch.Device device => JsonValue.Create(device.type == DeviceType.CPU ? "cpu" : device.index < 0 ? "cuda" : $"cuda:{device.index}"),
        Enum e => JsonValue.Create(e.ToString()),
        IEnumerable items => new JsonArray([.. items.Cast<object?>().Select(i => ToJson(i, isPath))]),
        _ => JsonValue.Create(Convert.ToString(value, CultureInfo.InvariantCulture)),
    };
}
