using System.Text;

namespace Pip.Search;

/// <summary>
/// The calibration data of an AdaPruner trial, and the check that it stays apart from the validation text.
/// </summary>
/// <remarks>
/// A sample is a passage of consecutive non-empty lines of the corpus, from a start line drawn at random, joined with
/// spaces and cut to a number of words. The search asks for <c>seq_len</c> words per sample: a byte-level BPE
/// tokenizer never gives fewer tokens than whitespace-separated words, so every sample fills the sequence length and
/// the metric cuts it to exactly <c>seq_len</c> tokens (LLM-Pruner draws fixed-length token windows the same way).
/// Passages do not overlap, and the same seed gives the same passages.
/// </remarks>
public static class AdaPrunerCalibration
{
    /// <summary>Fewest words a validation line needs to count in <see cref="CheckDisjoint"/>: 8 (shorter lines, such as titles, may repeat by chance).</summary>
    public const int DefaultOverlapMinWords = 8;

    /// <summary>The non-empty lines of a text file, trimmed.</summary>
    /// <param name="path">The UTF-8 text file.</param>
    /// <param name="cancellationToken">Cancels reading.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file has no non-empty line.</exception>
    public static IReadOnlyList<string> ReadLines(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Calibration corpus '{path}' does not exist.", path);
        }

        var lines = new List<string>();
        foreach (string raw in File.ReadLines(path, Encoding.UTF8))
        {
            if ((lines.Count & 0xFFF) == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            string line = raw.Trim();
            if (line.Length > 0)
            {
                lines.Add(line);
            }
        }

        return lines.Count > 0 ? lines : throw new InvalidDataException($"Calibration corpus '{path}' has no non-empty line.");
    }

    /// <summary>
    /// Draws <paramref name="count"/> non-overlapping passages of exactly <paramref name="words"/> words each from
    /// <paramref name="lines"/> (start lines uniform at random with <paramref name="seed"/>), in corpus order.
    /// </summary>
    /// <param name="lines">The corpus's non-empty lines (<see cref="ReadLines"/>).</param>
    /// <param name="count">Number of samples.</param>
    /// <param name="words">Words per sample.</param>
    /// <param name="seed">Seed of the draw.</param>
    /// <param name="sourcePath">The corpus file, recorded in the set (and named in errors), or null.</param>
    /// <returns>The samples.</returns>
    /// <exception cref="InvalidDataException">The corpus is too small for that many non-overlapping passages.</exception>
    public static CalibrationSet Draw(IReadOnlyList<string> lines, int count, int words, int seed, string? sourcePath = null)
    {
        ArgumentNullException.ThrowIfNull(lines);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(words, 1);
        var random = new Random(seed);
        var taken = new List<(int Start, int End, string Text)>(count);
        int attempts = 0;
        int maxAttempts = 100 * count + 1000;
        while (taken.Count < count && attempts++ < maxAttempts)
        {
            int start = random.Next(lines.Count);
            if (Passage(lines, start, words) is not { } passage)
            {
                continue;
            }

            if (!taken.Any(t => start < t.End && t.Start < passage.End))
            {
                taken.Add((start, passage.End, passage.Text));
            }
        }

        if (taken.Count < count)
        {
            throw new InvalidDataException(
                $"Calibration corpus '{sourcePath ?? "(lines)"}' ({lines.Count} non-empty lines) gave {taken.Count} non-overlapping passages of {words} words; " +
                $"{count} were asked for. Use a larger corpus, fewer samples or shorter sequences.");
        }

        return new CalibrationSet([.. taken.OrderBy(t => t.Start).Select((t, i) => new CalibrationSample(i, t.Text))], sourcePath);
    }

    /// <summary>
    /// Checks that the validation text shares no line with the calibration (and recovery) files: the files must differ,
    /// and no line of the validation file with at least <paramref name="minWords"/> words may appear (trimmed) in any of
    /// them. The search's objective is only fair when the data it tunes on never holds the text it is measured on.
    /// </summary>
    /// <param name="trainingPaths">The calibration corpora and any recovery text.</param>
    /// <param name="validationPath">The validation text.</param>
    /// <param name="minWords">Fewest words a validation line needs to count.</param>
    /// <param name="cancellationToken">Cancels reading.</param>
    /// <exception cref="FileNotFoundException">A file does not exist.</exception>
    /// <exception cref="InvalidDataException">A file is the validation file, or shares a line with it (the message names both files and the line).</exception>
    public static void CheckDisjoint(IEnumerable<string> trainingPaths, string validationPath, int minWords = DefaultOverlapMinWords, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(trainingPaths);
        ArgumentException.ThrowIfNullOrWhiteSpace(validationPath);
        string validation = Path.GetFullPath(validationPath);
        if (!File.Exists(validation))
        {
            throw new FileNotFoundException($"Validation text '{validation}' does not exist.", validation);
        }

        var paths = trainingPaths.Select(Path.GetFullPath).Distinct(StringComparer.Ordinal).ToArray();
        foreach (string path in paths)
        {
            if (string.Equals(path, validation, StringComparison.Ordinal))
            {
                throw new InvalidDataException($"The validation text '{validation}' is also a calibration or recovery file; give held-out text that calibration never sees.");
            }
        }

        var held = new HashSet<string>(StringComparer.Ordinal);
        foreach (string raw in File.ReadLines(validation, Encoding.UTF8))
        {
            string line = raw.Trim();
            if (CountWords(line) >= minWords)
            {
                held.Add(line);
            }
        }

        foreach (string path in paths)
        {
            if (!File.Exists(path))
            {
                throw new FileNotFoundException($"Calibration corpus '{path}' does not exist.", path);
            }

            long number = 0;
            foreach (string raw in File.ReadLines(path, Encoding.UTF8))
            {
                if ((++number & 0xFFF) == 0)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                }

                string line = raw.Trim();
                if (line.Length > 0 && held.Contains(line))
                {
                    string shown = line.Length > 80 ? line[..80] + "…" : line;
                    throw new InvalidDataException(
                        $"Calibration/recovery file '{path}' (line {number}) holds a line of the validation text '{validation}': \"{shown}\". " +
                        "The validation text must be held out: give calibration corpora that do not contain it.");
                }
            }
        }
    }

    /// <summary>The passage of <paramref name="words"/> words from line <paramref name="start"/> on, and the line after it; null when the corpus ends first.</summary>
    private static (string Text, int End)? Passage(IReadOnlyList<string> lines, int start, int words)
    {
        var text = new StringBuilder();
        int have = 0;
        for (int i = start; i < lines.Count; i++)
        {
            foreach (string word in lines[i].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
            {
                if (have > 0)
                {
                    text.Append(' ');
                }

                text.Append(word);
                if (++have == words)
                {
                    return (text.ToString(), i + 1);
                }
            }
        }

        return null;
    }

    private static int CountWords(string line)
    {
        int count = 0;
        bool inWord = false;
        foreach (char c in line)
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
}
