package lottery

import (
	"archive/zip"
	"bufio"
	"cmp"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AgencyFileName returns the name of agency's file, "agency-N.csv".
func AgencyFileName(agency int) string {
	return "agency-" + strconv.Itoa(agency) + ".csv"
}

// ParseAgencyFileName returns N for a base name "agency-N.csv" with N >= 1.
func ParseAgencyFileName(name string) (agency int, ok bool) {
	s, ok := strings.CutPrefix(name, "agency-")
	if !ok {
		return 0, false
	}
	if s, ok = strings.CutSuffix(s, ".csv"); !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || s != strconv.Itoa(n) {
		return 0, false // "agency-01.csv" or "agency-+1.csv" would alias agency 1
	}
	return n, true
}

// ExtractDataset writes the agency-N.csv files of the zip at zipPath into outDir, creating
// it, and returns their paths sorted by agency. Other entries are skipped, but any entry
// whose name could escape outDir (a path separator or "..") fails the whole extraction.
// Any agency-N.csv already in outDir is removed first (other files are kept), so
// afterwards it holds the dataset's agencies and no others.
func ExtractDataset(zipPath, outDir string) ([]string, error) {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return nil, fmt.Errorf("extract dataset: %w", err)
	}
	defer zr.Close()
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("extract dataset: %w", err)
	}

	type extracted struct {
		agency int
		path   string
	}
	// Check every name first, so a hostile archive writes nothing at all.
	for _, zf := range zr.File {
		if strings.ContainsAny(zf.Name, `/\`) || strings.Contains(zf.Name, "..") {
			return nil, fmt.Errorf("extract dataset %q: unsafe entry name %q", zipPath, zf.Name)
		}
	}
	if err := removeAgencyFiles(outDir); err != nil {
		return nil, fmt.Errorf("extract dataset: %w", err)
	}
	var files []extracted
	for _, zf := range zr.File {
		agency, ok := ParseAgencyFileName(zf.Name)
		if !ok || !zf.Mode().IsRegular() {
			continue
		}
		path := filepath.Join(outDir, zf.Name)
		if err := extractFile(zf, path); err != nil {
			return nil, fmt.Errorf("extract dataset %q: %w", zipPath, err)
		}
		files = append(files, extracted{agency, path})
	}
	slices.SortFunc(files, func(a, b extracted) int { return cmp.Compare(a.agency, b.agency) })
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.path
	}
	return paths, nil
}

// removeAgencyFiles deletes every agency-N.csv in dir (see [ParseAgencyFileName]) and
// nothing else: a dataset of 5 agencies written after one of 10 must not leave agencies
// 6 to 10 behind for whatever lists the directory. A directory of that name is left alone.
func removeAgencyFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("remove agency files: %w", err)
	}
	for _, e := range entries {
		if _, ok := ParseAgencyFileName(e.Name()); !ok || e.IsDir() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("remove agency files: %w", err)
		}
	}
	return nil
}

func extractFile(zf *zip.File, path string) error {
	src, err := zf.Open()
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return dst.Close()
}

// GenerateAgencyFiles writes agency-1.csv … agency-N.csv into dir (creating it), each with
// betsPerAgency synthetic bets in the official format, and returns their paths. The same
// seed gives byte-identical files. Numbers are uniform, so about one bet in 10,000 wins;
// on top of that agency i has (i-1)%4 rows forced to WinningNumber so that small datasets
// still have winners in most agencies. Any agency-N.csv already in dir is removed first
// (other files are kept), so afterwards it holds agencies 1..N and no others.
func GenerateAgencyFiles(dir string, agencies, betsPerAgency int, seed uint64) ([]string, error) {
	if agencies < 1 || betsPerAgency < 0 {
		return nil, fmt.Errorf("generate agency files: need agencies >= 1 and bets >= 0, got %d and %d", agencies, betsPerAgency)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("generate agency files: %w", err)
	}
	if err := removeAgencyFiles(dir); err != nil {
		return nil, fmt.Errorf("generate agency files: %w", err)
	}
	paths := make([]string, 0, agencies)
	for agency := 1; agency <= agencies; agency++ {
		path := filepath.Join(dir, AgencyFileName(agency))
		if err := generateAgencyFile(path, agency, betsPerAgency, seed); err != nil {
			return nil, fmt.Errorf("generate agency files: %w", err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

func generateAgencyFile(path string, agency, n int, seed uint64) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	w := bufio.NewWriterSize(f, bufSize)
	if err := WriteAgencyFile(w, func(yield func(Bet) bool) {
		// One stream per agency: a file does not depend on how many others are generated.
		rng := rand.New(rand.NewPCG(seed, uint64(agency)))
		forced := min((agency-1)%4, n)
		next := 1 // the next forced row is next*n/(forced+1): spread out and distinct
		for i := range n {
			b := randomBet(rng)
			if next <= forced && i == next*n/(forced+1) {
				b.Number = WinningNumber
				next++
			}
			if !yield(b) {
				return
			}
		}
	}); err != nil {
		return err
	}
	return w.Flush()
}

var (
	birthFirst = time.Date(1940, 1, 1, 0, 0, 0, 0, time.UTC)
	birthDays  = int(time.Date(2005, 12, 31, 0, 0, 0, 0, time.UTC).Sub(birthFirst)/(24*time.Hour)) + 1
)

func randomBet(rng *rand.Rand) Bet {
	names := maleNames
	if rng.IntN(2) == 0 {
		names = femaleNames
	}
	first := names[rng.IntN(len(names))]
	if rng.IntN(3) == 0 { // about a third carry a middle name, like "Santiago Lionel"
		if second := names[rng.IntN(len(names))]; second != first {
			first += " " + second
		}
	}
	return Bet{
		FirstName: first,
		LastName:  lastNames[rng.IntN(len(lastNames))],
		Document:  strconv.Itoa(10_000_000 + rng.IntN(40_000_000)),
		Birthdate: birthFirst.AddDate(0, 0, rng.IntN(birthDays)).Format(time.DateOnly),
		Number:    rng.IntN(10_000),
	}
}

var maleNames = []string{
	"Santiago", "Mateo", "Benjamín", "Tomás", "Joaquín", "Martín", "Nicolás", "Lucas",
	"Agustín", "Juan", "José", "Facundo", "Matías", "Sebastián", "Ramón", "Germán",
	"Julián", "Emanuel", "Lionel", "Ezequiel", "Iñaki", "Thiago", "Bautista", "Felipe",
	"Gonzalo", "Ignacio", "Rodrigo", "Andrés", "Hernán", "Óscar", "Rubén", "Ángel",
	"Diego", "Pablo", "Federico", "Maximiliano", "Franco", "Valentín", "Ulises", "Néstor",
}

var femaleNames = []string{
	"Valentina", "Sofía", "Martina", "Lucía", "Catalina", "Camila", "Florencia", "Agustina",
	"María", "Rocío", "Belén", "Inés", "Julieta", "Micaela", "Abril", "Milagros",
	"Ana", "Noelia", "Mónica", "Verónica", "Begoña", "Candela", "Ángeles", "Luján",
	"Paula", "Victoria", "Josefina", "Malena", "Romina", "Daiana", "Celeste", "Aylén",
	"Natalia", "Carolina", "Gabriela", "Soledad", "Marisol", "Nahir", "Zoé", "Jazmín",
}

var lastNames = []string{
	"González", "Rodríguez", "Gómez", "Fernández", "López", "Díaz", "Martínez", "Pérez",
	"García", "Sánchez", "Romero", "Sosa", "Álvarez", "Torres", "Ruiz", "Ramírez",
	"Flores", "Acosta", "Benítez", "Medina", "Suárez", "Herrera", "Aguirre", "Giménez",
	"Gutiérrez", "Pereyra", "Rojas", "Molina", "Castro", "Ortiz", "Silva", "Núñez",
	"Luna", "Juárez", "Cabrera", "Ríos", "Ferreyra", "Godoy", "Morales", "Domínguez",
	"Moreno", "Peralta", "Vega", "Carrizo", "Quiroga", "Castillo", "Ledesma", "Muñoz",
	"Ojeda", "Ponce", "Vera", "Vázquez", "Villalba", "Cardozo", "Navarro", "Ramos",
	"Arias", "Coronel", "Córdoba", "Figueroa", "Correa", "Cáceres", "Vargas", "Peña",
	"Ibáñez", "Farías", "Rivero", "Paz", "Miranda", "Roldán", "Méndez", "Lucero",
	"Agüero", "Páez", "Ávila", "Acuña", "Zárate", "Lorca", "Zambrano", "Rivera",
	"De la Fuente", "Del Valle",
}
