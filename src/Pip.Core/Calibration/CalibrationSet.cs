using System.Text;
using Pip.Internal;

namespace Pip;

/// <summary>A set of calibration samples, with the file they were drawn from.</summary>
/// <remarks>Immutable.</remarks>
public sealed class CalibrationSet
{
    /// <summary>Creates a set from samples.</summary>
    /// <param name="samples">The samples.</param>
    /// <param name="sourcePath">The file they came from, or null.</param>
    public CalibrationSet(IReadOnlyList<CalibrationSample> samples, string? sourcePath = null)
    {
        ArgumentNullException.ThrowIfNull(samples);
        Samples = [.. samples];
        SourcePath = sourcePath;
    }

    /// <summary>The samples, indexed 0..N−1.</summary>
    public IReadOnlyList<CalibrationSample> Samples { get; }

    /// <summary>The file the samples came from, or null.</summary>
    public string? SourcePath { get; }

    /// <summary>A set made of texts, in order.</summary>
    /// <param name="texts">The texts.</param>
    public static CalibrationSet FromTexts(IEnumerable<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        return new CalibrationSet([.. texts.Select((t, i) => new CalibrationSample(i, t))]);
    }

    /// <summary>Loads from <see cref="CalibrationOptions.FilePath"/>.</summary>
    /// <param name="options">The options; <see cref="CalibrationOptions.FilePath"/> must be set.</param>
    /// <param name="cancellationToken">Cancels reading.</param>
    public static CalibrationSet Load(CalibrationOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.FilePath is null)
        {
            throw new ArgumentException("CalibrationOptions.FilePath is not set: name the calibration text file.", nameof(options));
        }

        return Load(options.FilePath, options, cancellationToken);
    }

    /// <summary>Draws samples from a text file.</summary>
    /// <remarks>
    /// The file is read once, streaming. Units (paragraphs or lines, see <see cref="CalibrationOptions.Unit"/>) with at
    /// least <see cref="CalibrationOptions.MinWords"/> words are the candidates; <see cref="CalibrationOptions.SampleCount"/>
    /// of them are chosen uniformly at random with <see cref="CalibrationOptions.Seed"/> (reservoir sampling, so memory
    /// stays bounded), kept in file order, and each is cut at a word boundary to the character and word budgets.
    /// </remarks>
    /// <param name="path">The text file (UTF-8).</param>
    /// <param name="options">The options (its <see cref="CalibrationOptions.FilePath"/> is ignored), or null for the defaults.</param>
    /// <param name="cancellationToken">Cancels reading.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is empty or has too few usable units.</exception>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">The options are invalid.</exception>
    public static CalibrationSet Load(string path, CalibrationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        options ??= new CalibrationOptions();
        var errors = new List<string>();
        OptionsValidation.AddAllErrors(options, nameof(CalibrationOptions), errors);
        OptionsValidation.ThrowIfAny(errors, typeof(CalibrationOptions), nameof(CalibrationOptions));
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Calibration file '{path}' does not exist.", path);
        }

        var random = new Random(options.Seed);
        var reservoir = new List<(long Position, string Text)>(options.SampleCount);
        long candidates = 0;
        long units = 0;
        bool anyText = false;
        foreach (string unit in ReadUnits(path, options.Unit, cancellationToken))
        {
            anyText = true;
            units++;
            if (CountWords(unit) < options.MinWords)
            {
                continue;
            }

            // Reservoir sampling (Algorithm R): every candidate ends up chosen with the same probability.
            if (reservoir.Count < options.SampleCount)
            {
                reservoir.Add((candidates, unit));
            }
            else
            {
                long j = random.NextInt64(candidates + 1);
                if (j < options.SampleCount)
                {
                    reservoir[(int)j] = (candidates, unit);
                }
            }

            candidates++;
        }

        if (!anyText)
        {
            throw new InvalidDataException($"Calibration file '{path}' is empty (no non-blank line).");
        }

        if (candidates < options.SampleCount)
        {
            string unitName = options.Unit == CalibrationUnit.Paragraph ? "paragraph" : "line";
            throw new InvalidDataException(
                $"Calibration file '{path}' has {candidates} {unitName}(s) of at least {options.MinWords} words (out of {units}); " +
                $"{options.SampleCount} samples were asked for. Use a larger file, or lower SampleCount or MinWords.");
        }

        CalibrationSample[] samples = [.. reservoir
            .OrderBy(r => r.Position)
            .Select((r, i) => new CalibrationSample(i, Cut(r.Text, options.MaxCharacters, options.MaxWords)))];
        return new CalibrationSet(samples, path);
    }

    private static IEnumerable<string> ReadUnits(string path, CalibrationUnit unit, CancellationToken cancellationToken)
    {
        var paragraph = new StringBuilder();
        int lineCount = 0;
        foreach (string rawLine in File.ReadLines(path, Encoding.UTF8))
        {
            if ((++lineCount & 0x3FF) == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            string line = rawLine.Trim();
            if (unit == CalibrationUnit.Line)
            {
                if (line.Length > 0)
                {
                    yield return line;
                }

                continue;
            }

            if (line.Length == 0)
            {
                if (paragraph.Length > 0)
                {
                    yield return paragraph.ToString();
                    paragraph.Clear();
                }

                continue;
            }

            if (paragraph.Length > 0)
            {
                paragraph.Append(' ');
            }

            paragraph.Append(line);
        }

        if (paragraph.Length > 0)
        {
            yield return paragraph.ToString();
        }
    }

    private static int CountWords(string text)
    {
        int count = 0;
        bool inWord = false;
        foreach (char c in text)
        {
            bool space = char.IsWhiteSpace(c);
            if (!space && !inWord)
            {
                count++;
            }

            inWord = !space;
        }

        return count;
    }

    /// <summary>Cuts a text at the last word boundary within both budgets.</summary>
    internal static string Cut(string text, int maxCharacters, int? maxWords)
    {
        int end = text.Length;
        if (maxWords is { } words)
        {
            int count = 0;
            bool inWord = false;
            for (int i = 0; i < text.Length; i++)
            {
                bool space = char.IsWhiteSpace(text[i]);
                if (!space && !inWord && ++count > words)
                {
                    end = i;
                    break;
                }

                inWord = !space;
            }
        }

        if (end > maxCharacters)
        {
            // Cut before the word that crosses the budget; a single over-long word is cut hard.
            int cut = maxCharacters;
            if (!char.IsWhiteSpace(text[cut]))
            {
                int space = text.LastIndexOf(' ', cut - 1, cut);
                cut = space > 0 ? space : maxCharacters;
            }

            end = cut;
        }

        return text[..end].TrimEnd();
    }
}
